"""The long-running-jobs guide's job, against a local qcog-mock.

In one terminal:

    .venv/bin/qcog-mock serve

In another (the key is the one `serve` prints; `QCOG_API_KEY` in a `.env` file works too):

    QCOG_API_KEY=qcog-mock-api-key .venv/bin/python examples/long_running_job.py

The client goes where `QCOG_ENV` says (`DEV`: http://localhost:8001/api); `QCOG_BASE_URL`, read
by this script, points it elsewhere (`http://127.0.0.1:9000/api` for `serve --port 9000`).

The script uploads a synthetic dataset shaped like the guide's (77 features and its target),
submits the guide's job — 24 h timeout, 3 retries — and polls it as the guide does, but on the
emulator's clock: four simulated days pass in seconds. Then, as the guide's "Next steps" say, it
deploys the best checkpoint and asks it for predictions. Each epoch is priced at 3,300 simulated
seconds (an emulator-only parameter, ignored by the real platform) so that the job needs all four
attempts; early stopping is left off for the same reason.
"""

from __future__ import annotations

import asyncio
import os

from qcog_types.pytorch_models.hyperparameters import (
    GeneralHSModelHyperparameters,
    GradientClippingConfig,
    LossFunctionConfig,
    OptimizerConfig,
    PerGroupOptimizerParams,
    SchedulerConfig,
)

from qcog_mock.client import EmulatorClient, ExperimentClient, wait_for_run
from qcog_mock.client.adapters import load_dataframe
from qcog_mock.trainer.synthetic import synthetic_panel

number_of_columns = 77

hyperparameters = GeneralHSModelHyperparameters(
    hsm_model="general",
    epochs=100,
    batch_size=2000,
    seed=24,
    targets="scaled_demedian_forward_return_22d",
    device="cpu",
    input_operator_count=number_of_columns,
    output_operator_count=1,
    hilbert_space_dims=4,
    complex=True,
    split=0.2,
    optimizer_config=OptimizerConfig(
        type="Adam",
        default_params={"lr": 0.01},
        group_params=[
            PerGroupOptimizerParams(
                param_name_contains=["input_diag"], params={"lr": 1e-4, "weight_decay": 0}
            )
        ],
    ),
    loss_fn_config=LossFunctionConfig(type="MSELoss", params={}),
    scheduler_config=SchedulerConfig(type="StepLR", params={"step_size": 25, "gamma": 0.5}),
    gradient_clipping_config=GradientClippingConfig(max_norm=1.0, norm_type=2),
)


async def main() -> None:
    client = ExperimentClient(
        api_key=os.getenv("QCOG_API_KEY"), base_url=os.getenv("QCOG_BASE_URL")
    )

    frame = synthetic_panel(dates=100, assets=100, seed=0)  # 10,000 rows × 78 columns
    try:  # as the real client: a Path or a file object, and an unreachable server raises
        uploaded = await client.project_client.upload_dataset(
            load_dataframe(frame), "training-dat  ", override=True
        )
    except ConnectionError as error:
        raise SystemExit(f"Is `qcog-mock serve` running? {error}") from None
    if "error" in uploaded:
        raise SystemExit(f"Upload failed: {uploaded['error']}")

    submitted = await client.run_experiment(
        "long-running-job",
        "This is a long running job",
        experiment_name="pytorch-models",
        dataset_name="training-dat  ",
        instance="cpu",
        parameters={
            "hyperparameters": hyperparameters,
            "cpu_count": 4,
            "memory": 16384,
            "timeout": 3600 * 24,  # 24 hours per attempt
            "retries": 3,  # up to 4 attempts: 4 days
            "emulator": {"epoch_seconds": 3300},  # qcog-mock only
        },
        override=True,
        local_webhook_url=None,
    )
    if "error" in submitted:
        raise SystemExit(f"Submission failed: {submitted['error']}")
    run_id = submitted["response"]["experiment_run"]["id"]
    print(f"Submitted run {run_id}; waiting on the emulator's clock…")

    run = await wait_for_run(client, "long-running-job")  # an extension: seconds, not days
    print(f"Status: {run['status']}")
    for attempt in run["attempts"]:
        print(
            f"  attempt {attempt['number']}: {attempt['outcome']} "
            f"({attempt['started_at']} → {attempt['ended_at']}, "
            f"{attempt['epochs_completed']} epochs)"
        )
    print(f"Metrics: test_loss={run['metrics'].get('test_loss')}, errors={run['errors']}")

    # Next steps, as the guide says: deploy the best checkpoint, run an inference.
    deployment = await client.create_deployment(
        "long-running-model",
        "v1.0.0",
        run_name="long-running-job",
        criterion={"metric": "loss", "value": "smallest"},
    )
    print(f"Deployed {deployment['response']['checkpoint_name']} as long-running-model")
    rows = synthetic_panel(dates=1, assets=5, seed=99).drop(
        columns=["scaled_demedian_forward_return_22d"]
    )
    predictions = await client.sync_inference(rows, deployment_name="long-running-model")
    print(f"Predictions for 5 new rows: {predictions['response']['predictions']}")

    async with EmulatorClient.for_client(client) as emulator:
        clock = await emulator.clock()
        print(f"Simulated time is now {clock['now']}")
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
