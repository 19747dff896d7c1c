"""The pytest plugin as a user's test suite meets it: fixtures, marker, assertions, target."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from qcog_types.pytorch_models.hyperparameters import GeneralHSModelHyperparameters

from qcog_mock import mockserver
from qcog_mock.client.adapters import load_dataframe
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.assertions import (
    assert_attempts,
    assert_statuses,
    assert_webhooks_match_timeline,
)
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.scenarios import Mode
from qcog_mock.mockserver.testing.stall import ClockStalled
from qcog_mock.trainer.synthetic import TARGET
from tests.mockserver.helpers import dataset_csv
from tests.mockserver.helpers import hyperparameters as small_hyperparameters

HOUR = 3600
SCENARIOS = Path(__file__).parents[2] / "scenarios"


def hyperparameters() -> GeneralHSModelHyperparameters:
    return GeneralHSModelHyperparameters(
        hsm_model="general", epochs=4, batch_size=64, targets=TARGET, input_operator_count=8,
        output_operator_count=1, hilbert_space_dims=2,
        optimizer_config={"type": "Adam", "default_params": {"lr": 0.02}},
        loss_fn_config={"type": "MSELoss"},
    )  # fmt: skip


@pytest.mark.torch
@pytest.mark.qcog(
    clock="manual",
    start_time="2030-06-01T00:00:00Z",
    faults=[{"type": "crash", "attempt": 1, "epoch": 2, "message": "spot instance reclaimed"}],
)
async def test_a_users_test_with_the_fixtures(
    qcog_platform, qcog_client, qcog_clock, qcog_dataset, make_webhook_receiver
) -> None:
    receiver = make_webhook_receiver(qcog_platform.backend.webhooks.secret)
    await qcog_dataset("training", features=8)
    submitted = await qcog_client.run_experiment(
        "job", experiment_name="pytorch-models", dataset_name="training", instance="cpu",
        parameters={"hyperparameters": hyperparameters(), "timeout": HOUR, "retries": 1},
        local_webhook_url=receiver.url,
    )  # fmt: skip
    run_id = submitted["response"]["experiment_run"]["id"]
    await qcog_clock.advance(seconds=6 * HOUR)
    run = (await qcog_client.get_experiment_run("job"))["response"]
    events = await qcog_clock.events(run_id)

    assert run["created_at"] == "2030-06-01T00:00:00Z"  # the marker's start time
    assert_attempts(run, ["crashed", "completed"], events)
    assert "spot instance reclaimed" in run["attempts"][0]["reason"]  # the marker's fault plan
    assert_statuses(events, ["pending", "running", "pending", "running", "completed"])
    assert_webhooks_match_timeline(receiver, events, run_id)
    assert receiver.wait_for("run.completed", run_id=run_id)["data"]["run"]["status"] == "completed"


async def test_the_socket_platform_is_real_and_reset_per_test_1(qcog_socket_platform) -> None:
    assert qcog_socket_platform.base_url.startswith("http://127.0.0.1:")
    async with qcog_socket_platform.client() as client:
        assert (await client.project_client.list_datasets())["response"] == []
        from qcog_mock.trainer.synthetic import synthetic_panel

        frame = synthetic_panel(dates=1, assets=20, features=3)
        assert "response" in await client.project_client.upload_dataset(
            load_dataframe(frame), "left-behind"
        )


async def test_the_socket_platform_is_real_and_reset_per_test_2(qcog_socket_platform) -> None:
    async with qcog_socket_platform.client() as client:
        assert (await client.project_client.list_datasets())["response"] == []


def test_assertion_messages_read_like_the_story() -> None:
    run = {"name": "job", "attempts": [{"outcome": "timed_out"}, {"outcome": "completed"}]}
    events = [
        {"time": "2026-01-01T00:00:05Z", "type": "attempt.started", "attempt": 1},
        {"time": "2026-01-01T01:00:05Z", "type": "attempt.timed_out", "attempt": 1},
    ]
    with pytest.raises(AssertionError) as caught:
        assert_attempts(run, ["completed"], events)
    message = str(caught.value)
    assert "Attempt outcomes of run 'job' differ" in message
    assert (
        "expected: ['completed']" in message and "actual:   ['timed_out', 'completed']" in message
    )
    assert "2026-01-01T01:00:05Z  attempt.timed_out  (attempt 1)" in message
    with pytest.raises(AssertionError, match="Status sequence differs"):
        assert_statuses(events, ["pending"])


def test_qcog_target_runs_the_same_tests_elsewhere_and_skips_emulator_only_ones(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import pytest

        async def test_whoami(qcog_client):
            assert (await qcog_client.project_client.whoami())["response"]["project_id"]

        async def test_clock(qcog_clock):
            await qcog_clock.advance(seconds=1)

        @pytest.mark.qcog_emulator_only
        def test_emulator_only():
            pass
        """
    )
    monkeypatch.setenv("QCOG_API_KEY", "elsewhere-key")
    with QcogPlatform.socket(Settings(api_key="elsewhere-key")) as elsewhere:
        result = pytester.runpytest_inprocess(
            f"--qcog-target={elsewhere.base_url}", "-p", "no:cacheprovider",
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
        )  # fmt: skip
    result.assert_outcomes(passed=1, skipped=2)


@pytest.mark.torch
async def test_a_run_polled_on_a_manual_clock_that_nothing_advances_fails_with_the_fix() -> None:
    with QcogPlatform.in_process(Settings(api_key="k", clock="manual"), stall_seconds=0.3) as env:
        async with env.story() as story, env.client() as client:
            await story.upload("data", dataset_csv())
            await story.submit("job", "data", {"hyperparameters": small_hyperparameters()})
            with pytest.raises(ClockStalled) as stalled:
                for _ in range(100_000):  # a poller with no wait between polls
                    run = (await client.get_experiment_run("job"))["response"]
                    assert run["status"] in ("pending", "running")
            assert "the clock is manual and nothing advanced it" in str(stalled.value)
            assert "qcog_clock.advance" in str(stalled.value)
            # Once the test drives the clock, the same poller finishes.
            await story.advance(HOUR)
            run = (await client.get_experiment_run("job"))["response"]
            assert run["status"] == "completed"


@pytest.mark.torch
async def test_a_test_that_advances_the_clock_is_never_taken_for_a_stalled_one() -> None:
    # Polls interleaved with clock calls: every clock call starts the count again.
    with QcogPlatform.in_process(Settings(api_key="k", clock="manual"), stall_seconds=0.3) as env:
        async with env.story() as story, env.client() as client:
            await story.upload("data", dataset_csv())
            await story.submit("job", "data", {"hyperparameters": small_hyperparameters()})
            for _ in range(2_000):
                run = (await client.get_experiment_run("job"))["response"]
                if run["status"] == "completed":
                    break
                await story.advance(1)
            assert run["status"] == "completed"


@pytest.mark.torch
def test_the_fixtures_clock_is_auto_and_a_manual_poll_fails_within_seconds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest

        PARAMS = {{"hyperparameters": {small_hyperparameters(input_operator_count=8)!r}}}

        async def poll(qcog_client):
            await qcog_client.run_experiment(
                "job", experiment_name="pytorch-models", dataset_name="data", instance="cpu",
                parameters=PARAMS,
            )
            while True:
                run = (await qcog_client.get_experiment_run("job"))["response"]
                if run["status"] in ("completed", "failed"):
                    return run
                await asyncio.sleep(0.05)

        async def test_polling_on_the_default_clock(qcog_client, qcog_dataset):
            await qcog_dataset("data", features=8)
            assert (await poll(qcog_client))["status"] == "completed"

        @pytest.mark.qcog(clock="manual")
        async def test_polling_on_a_manual_clock(qcog_client, qcog_dataset):
            await qcog_dataset("data", features=8)
            await poll(qcog_client)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "qcog_stall_seconds=2", "--durations=0", "-vv"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ClockStalled: qcog-mock: the clock is manual and nothing*"])
    timed = [line for line in result.outlines if "call" in line and "manual_clock" in line]
    assert timed and float(timed[0].split("s ", 1)[0]) < 60, result.outlines


def test_only_the_layers_on_top_import_the_client() -> None:
    # The server never depends on the client: only the harness and the command line do.
    package = Path(mockserver.__file__).parent
    importers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*from qcog_mock(\.client\b| import client\b)", path.read_text(), re.M)
    ]
    assert importers, "the harness imports the client"
    assert all(name.startswith(("testing/", "cli/")) for name in importers), importers


# Installed in someone else's project -----------------------------------------------------------


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    heavy = ("torch", "pandas", "numpy", "fastapi", "httpx", "freezegun", "qcog_mock.client")
    code = (
        "import sys, qcog_mock.mockserver.testing.plugin\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert loaded.strip() == "[]"


def test_scenario_files_are_collected_only_from_the_folders_named(
    pytester: pytest.Pytester,
) -> None:
    scenarios = pytester.mkdir("scenarios")
    shutil.copy(SCENARIOS / "data-error-fails-at-once.toml", scenarios / "story.toml")
    (scenarios / "settings.toml").write_text("not = 'a scenario'\n")  # theirs, not ours
    nothing = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.makeini("[pytest]\nqcog_scenarios = scenarios\n")
    (scenarios / "settings.toml").unlink()
    # In file order: what is collected is the point here, not the order it runs in.
    collected = pytester.runpytest_inprocess(
        "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"
    )
    assert collected.ret == 0
    collected.stdout.fnmatch_lines(
        ["scenarios/story.toml::in-process", "scenarios/story.toml::socket"]
    )


COMPAT_TEST = """
import pytest
import qcog_mock.client

def test_which_qcogclient():
    try:
        import qcogclient
    except ModuleNotFoundError:
        print("PROVIDER none")
        return
    shim = getattr(qcogclient, "ExperimentClient", None) is qcog_mock.client.ExperimentClient
    print("PROVIDER", "shim" if shim else qcogclient.PROVIDER)
"""


@pytest.mark.parametrize(
    ("mode", "real_installed", "provider", "header"),
    [
        ("auto", True, "real", "qcogclient (version unknown) (real, "),
        ("auto", False, "shim", "qcogclient: qcog-mock's stand-in"),
        ("on", True, "shim", "qcogclient: qcog-mock's stand-in"),
        ("off", False, "none", "qcogclient: not installed"),
    ],
)
def test_qcog_compat_decides_which_qcogclient_the_tests_import(
    pytester: pytest.Pytester, mode: str, real_installed: bool, provider: str, header: str
) -> None:
    real = pytester.mkdir("site")
    (real / "qcogclient").mkdir()
    (real / "qcogclient" / "__init__.py").write_text("PROVIDER = 'real'\n")
    pytester.makeini(f"[pytest]\nqcog_compat = {mode}\n")
    pytester.makepyfile(test_compat=COMPAT_TEST)
    if real_installed:
        pytester._monkeypatch.setenv("PYTHONPATH", str(real))
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*PROVIDER {provider}"])
    assert header in result.stdout.str()


def test_a_wrong_qcog_compat_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqcog_compat = sometimes\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "qcog_compat must be one of auto, on, off, not 'sometimes'" in result.stderr.str()


def test_only_coroutine_tests_using_qcog_fixtures_are_marked_for_asyncio(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        async def test_with_a_qcog_fixture(qcog_platform):
            assert qcog_platform.emulated

        async def test_without():
            pass
        """
    )
    # Strict mode (no ini file). The other coroutine test fares as it does without the plugin.
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:qcog_mock", "-rA")
    with_plugin.stdout.fnmatch_lines(["PASSED *test_with_a_qcog_fixture*"])
    other = [line for line in with_plugin.outlines if "test_without" in line and "::" in line]
    assert other and other == [
        line for line in without.outlines if "test_without" in line and "::" in line
    ]


@pytest.mark.torch
@pytest.mark.qcog(clock="manual")  # exact instants: time moves only when the test says
async def test_qcog_time_gives_the_code_under_test_the_simulated_time(
    qcog_client, qcog_clock, qcog_dataset, qcog_time
) -> None:
    import time
    from datetime import UTC, datetime

    from qcog_mock.mockserver.clock import parse_time

    assert datetime.now(UTC) == datetime(2026, 1, 1, tzinfo=UTC)  # the emulator's start
    await qcog_dataset("training", features=8)
    await qcog_client.run_experiment(
        "job", experiment_name="pytorch-models", dataset_name="training", instance="cpu",
        parameters={"hyperparameters": hyperparameters(), "timeout": HOUR, "retries": 0},
    )  # fmt: skip
    started = time.time()
    clock = await qcog_clock.advance(seconds=30 * HOUR)  # the emulator trains meanwhile
    assert time.time() - started == 30 * HOUR
    assert datetime.now(UTC).timestamp() == parse_time(clock["now"])
    run = (await qcog_client.get_experiment_run("job"))["response"]
    assert run["status"] == "completed"


def test_qcog_time_leaves_pytests_own_timing_real(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        async def test_in_simulated_time(qcog_platform, qcog_clock, qcog_time):
            await qcog_clock.advance(seconds=3600)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--durations=0", "-vv")
    result.assert_outcomes(passed=1)
    timed = [line for line in result.outlines if "test_in_simulated_time" in line and "s " in line]
    seconds = [float(line.split("s ", 1)[0]) for line in timed if line[:1].isdigit()]
    # setup, call and teardown, each as long as it really took (not the simulated epoch's 1.8e9 s)
    assert len(seconds) == 3 and min(seconds) >= 0 and max(seconds) < 600, result.outlines


def test_qcog_mock_exec_runs_scripts_with_the_stand_ins(tmp_path: Path) -> None:
    real = tmp_path / "site" / "qcogclient"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("")
    probe = [sys.executable, "-c", "import qcogclient; print(qcogclient.__file__)"]
    qcog_mock_cli = [sys.executable, "-m", "qcog_mock.mockserver.cli", "exec"]

    def run(*compat: str, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath}
        command = [*qcog_mock_cli, *compat, "--", *probe]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)

    shim = Path(mockserver.__file__).parents[1] / "compat" / "qcogclient" / "__init__.py"
    assert Path(run().stdout.strip()) == shim.resolve()
    assert Path(run(pythonpath=str(real.parent)).stdout.strip()) == real / "__init__.py"
    assert Path(run("--compat", "on", pythonpath=str(real.parent)).stdout.strip()) == shim.resolve()
    assert "No module named 'qcogclient'" in run("--compat", "off").stderr
    empty = subprocess.run([*qcog_mock_cli], capture_output=True, text=True)
    assert empty.returncode == 1 and "name the command to run" in empty.stderr


def test_qcog_mock_exec_runs_python_as_the_python_that_has_qcog_mock(tmp_path: Path) -> None:
    # Outside an activated virtualenv, PATH finds the system's python, which has no qcog_mock.
    script = "import sys, qcog_mock, qcogclient; print(sys.executable)"
    for python in ("python", "python3"):
        done = subprocess.run(
            [sys.executable, "-m", "qcog_mock.mockserver.cli", "exec", "--", python, "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == sys.executable


@pytest.mark.parametrize("mode", ["in-process", "socket"])
async def test_one_way_to_start_an_emulator_in_process_or_on_a_socket(
    mode: Mode, tmp_path: Path
) -> None:
    settings = Settings(api_key="env-key", clock="manual", data_dir=tmp_path / "data")
    with QcogPlatform.start(mode, settings) as platform:
        assert platform.emulated and platform.api_key == "env-key"
        assert (platform.port == 0) == (mode == "in-process")
        async with platform.story() as story:
            dataset = await story.upload("data", b"x,y\n" + b"1,2\n" * 20)
            assert (await story.advance(60))["now"] == "2026-01-01T00:01:00Z"
        assert platform.backend is not None
        assert platform.backend.store.get("dataset", dataset["id"]) is not None
        port = platform.port
    if mode == "socket":  # the server has stopped: its port answers no more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(ValueError, match="mode: 'in-process' or 'socket', not 'both'"):
        QcogPlatform.start("both")  # type: ignore[arg-type]
    elsewhere = QcogPlatform.target("https://qcog.example/api", "k")
    assert not elsewhere.emulated and elsewhere.port == 0


@pytest.mark.torch
async def test_qcog_dataset_uploads_the_users_own_data_or_a_panel_with_their_target(
    qcog_client, qcog_dataset, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [0.1, 0.4, 0.3, 0.9], "b": [1.0, 0.0, 1.0, 0.0], "y": [1, 2, 3, 4]})
    csv = tmp_path / "mine.csv"
    frame.to_csv(csv, index=False)
    for name, data in (("frame", frame), ("path", csv), ("text", str(csv)), ("raw", b"a,y\n1,2\n")):
        assert (await qcog_dataset(name, data))["name"] == name
    # A synthetic panel under the user's target name, trained on with it.
    await qcog_dataset("panel", features=4, target="my_return")
    params = {"hyperparameters": {**small_hyperparameters(), "targets": "my_return"}}
    await qcog_client.run_experiment(
        "job", experiment_name="pytorch-models", dataset_name="panel", instance="cpu",
        parameters=params,
    )  # fmt: skip
    while (run := (await qcog_client.get_experiment_run("job"))["response"])["status"] in (
        "pending",
        "running",
    ):
        pass  # the auto clock: the run finishes as fast as it trains
    assert run["status"] == "completed", run
    with pytest.raises(TypeError, match="features shape a synthetic panel"):
        await qcog_dataset("both", frame, features=3)
    with pytest.raises(TypeError, match="data must be a DataFrame, a CSV file's path or CSV"):
        await qcog_dataset("bad", 42)
