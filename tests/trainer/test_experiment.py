from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from qcog_mock.trainer import PREDICT_VERSION, TRAIN_VERSION, ConfigurationError, predict, train
from qcog_mock.trainer.components import param_groups
from qcog_mock.trainer.experiment import WALL_TIME_METRICS
from qcog_mock.trainer.hyperparameters import OptimizerConfig, parse_hyperparameters
from qcog_mock.trainer.layers import build_model
from qcog_mock.trainer.synthetic import TARGET
from tests.trainer.helpers import Recorder, hyperparameters

GUIDE_GROUPS = [{"param_name_contains": ["input_diag"], "params": {"lr": 1e-4, "weight_decay": 0}}]


def run(path: Path, context: Any = None, **overrides: Any) -> dict[str, Any]:
    params = {"hyperparameters": hyperparameters(**overrides), "cpu_count": 4, "memory": 1024}
    return train(context if context is not None else {}, str(path), params=params)["metrics"]


def test_contract_exports() -> None:
    assert TRAIN_VERSION == "v0.0.1" and PREDICT_VERSION == "v0.0.1"


def test_metrics_have_the_public_names_and_consistent_values(small_csv: Path) -> None:
    recorder = Recorder()
    metrics = run(small_csv, recorder, epochs=3)
    assert set(metrics) == {
        "test_loss", "train_loss_history", "val_loss_history", "final_train_loss",
        "final_val_loss", "epochs_completed", "best_val_loss", "train_dataset_size",
        "val_dataset_size", "total_training_time", "avg_epoch_time", "checkpoint_metrics",
    }  # fmt: skip
    assert metrics["epochs_completed"] == 3
    assert (metrics["train_dataset_size"], metrics["val_dataset_size"]) == (480, 120)
    assert metrics["final_val_loss"] == metrics["val_loss_history"][-1]
    assert metrics["final_train_loss"] == metrics["train_loss_history"][-1]
    assert metrics["best_val_loss"] == min(metrics["val_loss_history"])
    assert metrics["test_loss"] == metrics["final_val_loss"]  # no early stopping: same weights
    assert metrics["checkpoint_metrics"] == ["loss"]
    assert metrics["total_training_time"] > 0
    assert recorder.started == [1, 2, 3]
    assert [epoch for epoch, _ in recorder.ended] == [1, 2, 3]
    assert [m["val_loss"] for _, m in recorder.ended] == metrics["val_loss_history"]


def test_a_checkpoint_is_saved_after_every_epoch(small_csv: Path) -> None:
    recorder = Recorder()
    metrics = run(small_csv, recorder, epochs=3)
    assert [c["current_epoch"] for c in recorder.checkpoints] == [1, 2, 3]
    last = recorder.checkpoints[-1]
    assert last["metrics"] == {"loss": metrics["final_train_loss"]}
    assert last["other_states"]["loss"] == metrics["final_train_loss"]
    assert "optimizer_state_dict" in last["other_states"]
    assert last["hyperparameters"]["targets"] == TARGET
    assert set(last["model_state_dict"]) == {
        "input_diags", "input_trius", "output_diags", "output_trius",
    }  # fmt: skip
    # The recorder copies what it keeps: later epochs did not change the first checkpoint.
    first = recorder.checkpoints[0]["model_state_dict"]["input_diags"]
    assert not torch.equal(first, last["model_state_dict"]["input_diags"])


def test_loss_decreases_on_the_synthetic_data(small_csv: Path) -> None:
    metrics = run(small_csv, epochs=6)
    history = metrics["train_loss_history"]
    assert history[-1] < history[0] * 0.9
    assert metrics["val_loss_history"][-1] < metrics["val_loss_history"][0]


@pytest.mark.parametrize("model", ["general", "general_fullenergy", "pauli"])
def test_every_variant_trains_and_beats_the_mean_predictor(guide_csv: Path, model: str) -> None:
    shape: dict[str, Any] = {"hilbert_space_dims": 4}
    if model == "pauli":
        shape = {"qubits_count": 2}
    metrics = run(
        guide_csv,
        hsm_model=model,
        epochs=10,
        batch_size=128,
        input_operator_count=77,
        optimizer_config={
            "type": "Adam",
            "default_params": {"lr": 0.02},
            "group_params": [{"param_name_contains": ["input_diag"], "params": {"lr": 1e-3}}],
        },
        **shape,
    )
    # The mean predictor's validation MSE: the variance of the held-out targets.
    frame = pd.read_csv(guide_csv)
    generator = torch.Generator().manual_seed(5)
    order = torch.randperm(len(frame), generator=generator)
    held_out = frame[TARGET].to_numpy()[order[: metrics["val_dataset_size"]].numpy()]
    train_mean = frame[TARGET].to_numpy()[order[metrics["val_dataset_size"] :].numpy()].mean()
    mean_mse = float(((held_out - train_mean) ** 2).mean())
    assert metrics["test_loss"] < 0.9 * mean_mse


def test_guide_optimizer_group_selects_exactly_the_input_diagonals() -> None:
    config = OptimizerConfig(type="Adam", default_params={"lr": 1e-3}, group_params=GUIDE_GROUPS)
    for weighted in (False, True):
        hp = parse_hyperparameters(hyperparameters(weighted_layer=weighted))
        model = build_model(hp)
        names = {id(p): name for name, p in model.named_parameters()}
        groups = param_groups(model, config)
        assert [names[id(p)] for p in groups[0]["params"]] == [
            "hsm_layer.input_diags" if weighted else "input_diags"
        ]
        assert groups[0]["lr"] == 1e-4 and groups[0]["weight_decay"] == 0
        rest = {names[id(p)] for p in groups[1]["params"]}
        assert "input_trius" in {n.removeprefix("hsm_layer.") for n in rest}
        assert groups[1]["lr"] == 1e-3


def test_first_matching_group_wins_and_groups_do_not_inherit_defaults() -> None:
    model = build_model(parse_hyperparameters(hyperparameters()))
    config = OptimizerConfig(
        type="Adam",
        default_params={"lr": 0.5},
        group_params=[
            {"param_name_contains": ["input"], "params": {"weight_decay": 0.1}},
            {"param_name_contains": ["input_trius", "output_diags"], "params": {"lr": 0.2}},
            {"param_name_contains": ["nothing_matches"], "params": {"lr": 0.3}},
        ],
    )
    groups = param_groups(model, config)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [[names[id(p)] for p in g["params"]] for g in groups] == [
        ["input_diags", "input_trius"],
        ["output_diags"],
        ["output_trius"],
    ]
    optimizer = torch.optim.Adam(groups)
    assert optimizer.param_groups[0]["lr"] == 1e-3  # torch's default, not default_params
    assert [g["lr"] for g in optimizer.param_groups[1:]] == [0.2, 0.5]


def test_any_torch_optimizer_including_lbfgs(small_csv: Path) -> None:
    for name, params in [("SGD", {"lr": 0.05, "momentum": 0.9}), ("LBFGS", {"lr": 0.1})]:
        metrics = run(
            small_csv, epochs=2, optimizer_config={"type": name, "default_params": params}
        )
        assert all(math.isfinite(v) for v in metrics["train_loss_history"])


def test_loss_params_go_to_torch_unchanged(small_csv: Path) -> None:
    metrics = run(
        small_csv, epochs=1, loss_fn_config={"type": "HuberLoss", "params": {"delta": 0.5}}
    )
    assert math.isfinite(metrics["test_loss"])
    from qcog_mock.trainer.components import build_loss
    from qcog_mock.trainer.hyperparameters import LossFunctionConfig

    # As on the platform: torch wants a tensor, a JSON list fails, with torch's words and a hint.
    with pytest.raises(ConfigurationError) as caught:
        build_loss(LossFunctionConfig(type="CrossEntropyLoss", params={"weight": [1.0, 2.0]}))
    assert "cannot assign 'list' object to buffer 'weight'" in str(caught.value)
    assert "Hint:" in str(caught.value) and caught.value.retryable is False


def test_optimizer_group_keys_are_kept_as_torch_keeps_them(small_csv: Path) -> None:
    recorder = Recorder()
    run(
        small_csv, recorder, epochs=1,
        optimizer_config={"type": "Adam", "default_params": {"lr": 0.01, "lrr": 1}},
    )  # fmt: skip
    group = recorder.checkpoints[-1]["other_states"]["optimizer_state_dict"]["param_groups"][0]
    assert group["lrr"] == 1 and group["lr"] == 0.01  # a typo trains silently, as on the platform


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_device_this_instance_lacks_fails_as_torch_does(small_csv: Path, device: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        run(small_csv, device=device)
    message = str(caught.value)
    assert message.startswith(f"device: '{device}' is not available:") and "device='cpu'" in message


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"loss_fn_config": {"type": "MSELoss", "params": {"bogus": 1}}}, "loss_fn_config"),
        ({"loss_fn_config": {"type": "MSELoss", "params": {"reduction": "none"}}}, "reduce"),
        ({"scheduler_config": {"type": "StepLR", "params": {}}}, "scheduler_config"),
        (
            {"early_stopping_config": {"monitor": "val_accuracy"}},
            "Metric 'val_accuracy' for early stopping not found",
        ),
        (
            # The platform's experiment passes monitor to the constructor, which refuses it.
            {"scheduler_config": {"type": "ReduceLROnPlateau", "params": {"monitor": "val_loss"}}},
            "unexpected keyword argument 'monitor'. Hint: remove monitor",
        ),
        ({"hsm_model": "pauli"}, "qubits_count"),
    ],
)
def test_configuration_errors_fail_before_training(
    small_csv: Path, overrides: dict[str, Any], fragment: str
) -> None:
    recorder = Recorder()
    with pytest.raises(ConfigurationError) as caught:
        run(small_csv, recorder, **overrides)
    assert fragment in str(caught.value)
    assert caught.value.retryable is False
    assert recorder.started == []


def test_hyperparameters_must_be_provided(small_csv: Path) -> None:
    with pytest.raises(ConfigurationError, match="Hyperparameters must be provided"):
        train({}, str(small_csv), params={"cpu_count": 1})


def test_schedulers_step_per_epoch_per_step_and_on_plateau(small_csv: Path) -> None:
    def lrs(scheduler: dict[str, Any], epochs: int = 3) -> list[float]:
        recorder = Recorder()
        run(small_csv, recorder, epochs=epochs, scheduler_config=scheduler)
        return [
            c["other_states"]["optimizer_state_dict"]["param_groups"][0]["lr"]
            for c in recorder.checkpoints
        ]

    assert lrs({"type": "StepLR", "params": {"step_size": 1, "gamma": 0.5}}) == pytest.approx(
        [0.005, 0.0025, 0.00125]
    )
    # 480 training rows / 128 = 4 batches per epoch: interval="step" steps 4 times per epoch.
    per_step = lrs({"type": "StepLR", "params": {"step_size": 1, "gamma": 0.5}, "interval": "step"})
    assert per_step == pytest.approx([0.01 * 0.5**4, 0.01 * 0.5**8, 0.01 * 0.5**12])
    plateau = lrs(
        {
            "type": "ReduceLROnPlateau",
            "params": {"patience": 0, "factor": 0.1, "threshold": 10.0},  # steps on val_loss
        }
    )
    # threshold=10 makes no epoch an improvement: one reduction per epoch, from the first.
    assert plateau == pytest.approx([1e-3, 1e-4, 1e-5])


def test_early_stopping_stops_and_restores_the_best_weights(small_csv: Path) -> None:
    recorder = Recorder()
    metrics = run(
        small_csv,
        recorder,
        epochs=30,
        optimizer_config={"type": "SGD", "default_params": {"lr": 0.5}},
        early_stopping_config={"monitor": "val_loss", "patience": 2, "min_delta": 0.0},
    )
    history = metrics["val_loss_history"]
    assert metrics["epochs_completed"] < 30
    best_epoch = history.index(min(history)) + 1
    assert metrics["epochs_completed"] == best_epoch + 2  # patience epochs after the best
    assert metrics["test_loss"] == pytest.approx(min(history), rel=1e-6)
    assert metrics["test_loss"] != history[-1]
    state = recorder.checkpoints[-1]["other_states"]["early_stopping_state"]
    assert state["should_stop"] and state["best_epoch"] == best_epoch


def test_an_epoch_hook_can_end_the_attempt_between_epochs(small_csv: Path) -> None:
    class Deadline(Exception):
        pass

    class StopsAtThree(Recorder):
        def on_epoch_start(self, epoch: int) -> None:
            if epoch == 3:
                raise Deadline
            super().on_epoch_start(epoch)

    recorder = StopsAtThree()
    with pytest.raises(Deadline):
        run(small_csv, recorder, epochs=5)
    assert [c["current_epoch"] for c in recorder.checkpoints] == [1, 2]


def serialised(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What a platform stores and reads back: a torch.save round trip."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


RESUME_CASES = {
    "general": {},
    "pauli": {"hsm_model": "pauli", "qubits_count": 2},
    "weighted": {"weighted_layer": True, "beta": 2.0},
}


@pytest.mark.parametrize("case", RESUME_CASES)
@pytest.mark.parametrize("stop_after", [1, 3])
def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(
    small_csv: Path, case: str, stop_after: int
) -> None:
    overrides: dict[str, Any] = {
        **RESUME_CASES[case],
        "epochs": 6,
        "optimizer_config": {
            "type": "Adam",
            "default_params": {"lr": 0.02},
            "group_params": GUIDE_GROUPS,
        },
        "scheduler_config": {"type": "StepLR", "params": {"step_size": 2, "gamma": 0.5}},
        "early_stopping_config": {"monitor": "val_loss", "patience": 10, "min_delta": 1e-3},
        "gradient_clipping_config": {"max_norm": 1.0},
    }
    whole = Recorder()
    expected = run(small_csv, whole, **overrides)

    first = Recorder()

    class Interrupted(Exception):
        pass

    def interrupt(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == stop_after:
            raise Interrupted

    first.on_epoch_end = interrupt  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        run(small_csv, first, **overrides)
    resumed = Recorder(resume_from=serialised(first.checkpoints[-1]))
    actual = run(small_csv, resumed, **overrides)

    assert resumed.started == list(range(stop_after + 1, 7))
    assert {k: v for k, v in actual.items() if k not in WALL_TIME_METRICS} == {
        k: v for k, v in expected.items() if k not in WALL_TIME_METRICS
    }
    final_expected = whole.checkpoints[-1]
    final_actual = resumed.checkpoints[-1]
    for name, tensor in final_expected["model_state_dict"].items():
        assert torch.equal(final_actual["model_state_dict"][name], tensor), name
    assert (
        final_actual["other_states"]["scheduler_state_dict"]
        == (final_expected["other_states"]["scheduler_state_dict"])
    )


def test_resume_after_early_stopping_fired_trains_no_more(small_csv: Path) -> None:
    overrides: dict[str, Any] = {
        "epochs": 30,
        "optimizer_config": {"type": "SGD", "default_params": {"lr": 0.5}},
        "early_stopping_config": {"monitor": "val_loss", "patience": 1, "min_delta": 0.0},
    }
    whole = Recorder()
    expected = run(small_csv, whole, **overrides)
    resumed = Recorder(resume_from=serialised(whole.checkpoints[-1]))
    actual = run(small_csv, resumed, **overrides)
    assert resumed.started == []
    assert actual["test_loss"] == expected["test_loss"]
    assert actual["epochs_completed"] == expected["epochs_completed"]


def test_a_checkpoint_that_does_not_fit_is_a_configuration_error(small_csv: Path) -> None:
    recorder = Recorder()
    run(small_csv, recorder, epochs=1)
    mismatched = Recorder(resume_from=recorder.checkpoints[-1])
    with pytest.raises(ConfigurationError, match="does not fit"):
        run(small_csv, mismatched, epochs=2, hilbert_space_dims=3)


def test_predict_returns_the_models_outputs(small_csv: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    run(small_csv, recorder, epochs=2, weighted_layer=True)
    checkpoint = serialised(recorder.checkpoints[-1])
    frame = pd.read_csv(small_csv)
    features = frame.drop(columns=[TARGET])
    path = tmp_path / "inputs.csv"
    features.to_csv(path, index=False)

    result = predict({}, checkpoint, params={"dataset_path": str(path)})
    predictions = torch.tensor(result["predictions"])
    assert predictions.shape == (len(frame), 1)

    model = build_model(parse_hyperparameters(checkpoint["hyperparameters"]))
    model.load_state_dict(checkpoint["model_state_dict"])
    with torch.no_grad():
        expected = model(torch.tensor(features.to_numpy(), dtype=torch.float32))
    assert torch.equal(predictions, expected)

    from_buffer = predict({}, checkpoint, params={"dataset_buffer": features.to_csv(index=False)})
    assert from_buffer == result and result["notes"] == []


def test_predict_reads_columns_by_position_as_the_platform_does(small_csv: Path) -> None:
    recorder = Recorder()
    run(small_csv, recorder, epochs=1)
    checkpoint = recorder.checkpoints[-1]
    frame = pd.read_csv(small_csv)
    features = frame.drop(columns=[TARGET])

    def predicted(data: pd.DataFrame) -> dict[str, Any]:
        return predict({}, checkpoint, params={"dataset_buffer": data.to_csv(index=False)})

    def error(data: pd.DataFrame) -> str:
        with pytest.raises(ValueError) as caught:
            predicted(data)
        return str(caught.value)

    assert "takes 8 inputs, read by position" in error(features.drop(columns=["feature_03"]))
    assert "has 9 columns" in error(features.assign(extra=1.0))
    assert f"without the target column(s) ['{TARGET}']" in error(frame)
    # Other names, same count: read by position, and the answer says so.
    renamed = features.rename(columns={"feature_00": "price"})
    answer = predicted(renamed)
    assert answer["predictions"] == predicted(features)["predictions"]
    assert answer["notes"] == [
        "Columns are read by position; their names differ from training: "
        "column 1 'price' is read as 'feature_00'."
    ]
    with pytest.raises(ValueError, match="Dataset path or buffer must be provided"):
        predict({}, checkpoint, params={})
