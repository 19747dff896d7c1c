"""State snapshots: saved mid-run and restored into a fresh data dir, a run ends as on a server
never stopped; the archive is only read; other format versions and damaged archives are refused
by name; a stopped data dir saves from the command line; the marker takes ``state=``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.mockserver.cli.main import main
from qcog_mock.mockserver.platform import OtherStartingPoint
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.state import StateError, manifest
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from tests.mockserver.helpers import KEY, connected, emulator, hyperparameters
from tests.mockserver.test_restart import HOUR, KILL_AT, story_until_kill, timeline, uninterrupted

ROOT = Path(__file__).resolve().parents[2]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.torch
async def test_a_snapshot_taken_during_attempt_2_carries_on_as_a_server_never_stopped(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "mid-run.tar.gz"
    async with emulator(data_dir=tmp_path / "first") as platform:
        run_id = await story_until_kill(platform)
        before = await platform.run(run_id)
        events_before = await platform.events()
        clock_before = (await platform.client.get("/_emulator/clock")).json()
        answer = await platform.client.get("/_emulator/state")  # the control plane
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/gzip"
        archive.write_bytes(answer.content)
    assert before["status"] == "running" and before["current_attempt"] == 2
    assert before["metrics"]["epoch"] == 3
    saved = digest(archive)

    with QcogPlatform.in_process(
        Settings(api_key=KEY, clock="manual", data_dir=tmp_path / "fresh", state_file=archive)
    ) as restored:
        async with connected(restored) as platform:
            clock = (await platform.client.get("/_emulator/clock")).json()
            assert (clock["now"], clock["mode"]) == (clock_before["now"], clock_before["mode"])
            after = await platform.run(run_id)
            assert after["attempts"] == before["attempts"]
            assert await platform.events() == events_before  # a restore adds nothing to it
            await platform.advance(24 * HOUR - KILL_AT)
            finished = await platform.run(run_id)
            restored_timeline = timeline(await platform.events())

    expected_timeline, expected_run = await uninterrupted()
    assert finished["status"] == "completed"
    assert restored_timeline == expected_timeline
    from qcog_mock.trainer.experiment import WALL_TIME_METRICS  # torch: not at collection

    strip = lambda m: {k: v for k, v in m.items() if k not in WALL_TIME_METRICS}  # noqa: E731
    assert strip(finished["metrics"]) == strip(expected_run["metrics"])
    assert finished["attempts"] == expected_run["attempts"]
    assert digest(archive) == saved  # only read


def test_a_data_dir_remembers_its_starting_point_and_a_reset_returns_to_it(tmp_path: Path) -> None:
    first = Emulator(Settings(api_key=KEY, clock="manual", data_dir=tmp_path / "a"))
    try:
        first.control.advance(seconds=3600)
        archive = tmp_path / "state.tar.gz"
        first.save_state(archive)
        secret = first.webhooks.secret
    finally:
        first.close()
    assert archive.stat().st_mode & 0o077 == 0  # key digests and the webhook secret
    settings = Settings(api_key=KEY, clock="manual", data_dir=tmp_path / "b", state_file=archive)
    restored = Emulator(settings)
    try:
        assert restored.webhooks.secret == secret
        assert restored.control.clock_state().now == "2026-01-01T01:00:00Z"
        restored.control.advance(seconds=7200)
        restored.reset()  # back to the archive's state, not to the defaults
        assert restored.control.clock_state().now == "2026-01-01T01:00:00Z"
    finally:
        restored.close()
    # A server's own key opens the first project of any state it starts from.
    keyed = Emulator(Settings(api_key="job-secret-0001", state_file=archive))
    try:
        principal = keyed.identity.authenticate("x-api-key job-secret-0001")
        assert principal.project_id == keyed.store.setting("seed_project")
    finally:
        keyed.close()
    # Restarted on its data dir: from the same archive it goes on; from another, refused.
    Emulator(settings).close()
    other = tmp_path / "other.tar.gz"
    other.write_bytes(archive.read_bytes() + b"")  # same bytes: the same starting point
    Emulator(Settings(api_key=KEY, data_dir=tmp_path / "b", state_file=other)).close()
    blank = Emulator(Settings(api_key=KEY, data_dir=tmp_path / "c"))
    blank.save_state(other)
    blank.close()
    with pytest.raises(OtherStartingPoint, match=r"remove that dir .* to start from"):
        Emulator(Settings(api_key=KEY, data_dir=tmp_path / "b", state_file=other))


def archive_with(members: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def test_another_format_version_is_refused_naming_both(tmp_path: Path) -> None:
    future = {"format": "qcog-mock state", "format_version": 2, "qcog_mock_version": "9.0.0"}
    archive = archive_with({"manifest.json": json.dumps(future).encode()}, tmp_path / "s.tar.gz")
    with pytest.raises(StateError) as raised:
        Emulator(Settings(state_file=archive, data_dir=tmp_path / "data"))
    message = str(raised.value)
    assert "format version 2 (written by qcog-mock 9.0.0)" in message
    assert "reads format version 1 only" in message
    assert not (tmp_path / "data").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not an archive at all", "not a qcog-mock state archive"),
        (None, "no such file"),
    ],
)
def test_what_is_not_an_archive_is_refused_by_name(
    tmp_path: Path, content: bytes | None, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.tar.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StateError, match=says):
        manifest(path)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--state", str(path), "--data-dir", str(tmp_path / "d"), "--port", "0"])
    assert says in str(exited.value) and str(exited.value).startswith("qcog-mock serve: ")


def test_an_archive_is_read_without_trusting_its_names(tmp_path: Path) -> None:
    good = tmp_path / "good.tar.gz"
    blank = Emulator(Settings(api_key=KEY))
    blank.save_state(good)
    blank.close()
    with tarfile.open(good, "r:gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}  # type: ignore[union-attr]
    outside = tmp_path / "outside.txt"
    members[f"../../../../../../..{outside}"] = b"escaped"
    members["datasets/../../escaped.csv"] = b"escaped"
    members["datasets/.."] = b"escaped"
    hostile = archive_with(members, tmp_path / "hostile.tar.gz")
    restored = Emulator(Settings(api_key=KEY, data_dir=tmp_path / "d", state_file=hostile))
    restored.close()
    assert not outside.exists()
    assert not (tmp_path / "escaped.csv").exists()
    assert sorted(p.name for p in (tmp_path / "d").iterdir() if not p.name.startswith(".")) == [
        "checkpoints",
        "datasets",
        "initial-state.tar.gz",
        "qcog-mock.sqlite3",
    ]


def test_state_save_reads_a_stopped_data_dir_and_not_a_running_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    running = Emulator(Settings(api_key=KEY, clock="manual", data_dir=data_dir))
    try:
        running.control.advance(seconds=90)
        archive = tmp_path / "saved.tar.gz"
        with pytest.raises(SystemExit) as exited:
            main(["state", "save", str(archive), "--data-dir", str(data_dir)])
        assert exited.value.code == 1
        assert "a server is running on" in capsys.readouterr().err
        assert not archive.exists()
    finally:
        running.close()
    with pytest.raises(SystemExit) as exited:
        main(["state", "save", str(archive), "--data-dir", str(data_dir)])
    assert exited.value.code == 0
    assert f"saved {archive}: simulated time 2026-01-01T00:01:30Z" in capsys.readouterr().out
    assert manifest(archive)["clock"] == "2026-01-01T00:01:30Z"


# The marker's state=: an archive this module saves first, named by its absolute path.
STATE = Path(tempfile.gettempdir()) / f"qcog-mock-marker-state-{id(object())}.tar.gz"


@pytest.fixture(scope="module")
def saved_state() -> Any:
    blank = Emulator(Settings(api_key=KEY, clock="manual"))
    try:
        blank.control.advance(seconds=600)
        blank.save_state(STATE)
    finally:
        blank.close()
    yield STATE
    STATE.unlink(missing_ok=True)


@pytest.mark.qcog(state=str(STATE), clock="auto")
async def test_the_marker_starts_a_test_from_a_state(saved_state: Path, qcog_clock: Any) -> None:
    clock = await qcog_clock.clock()
    assert clock["now"] == "2026-01-01T00:10:00Z"  # the archive's time
    assert clock["mode"] == "auto"  # the marker's mode wins over the archive's


@pytest.mark.torch
async def test_snapshots_taken_while_a_run_trains_hold_every_file_they_name(
    tmp_path: Path,
) -> None:
    """Epochs commit and old checkpoints are pruned while the snapshots are taken."""
    archives = []
    async with emulator(clock="auto", keep_checkpoints=2) as platform:
        dataset = await platform.dataset_id("training-data")
        run = await platform.submit(dataset, hyperparameters=hyperparameters(epochs=12))
        taken_at: set[int] = set()
        while len(archives) < 5:
            found = await platform.run(run["id"])
            epoch = (found["metrics"] or {}).get("epoch", 0)
            if found["status"] == "completed":
                break
            if epoch in taken_at:  # another process trains: its next epoch, in wall time
                await asyncio.sleep(0.005)
                continue
            taken_at.add(epoch)
            answer = await platform.client.get("/_emulator/state")
            assert answer.status_code == 200, answer.text
            archives.append(tmp_path / f"{len(archives)}.tar.gz")
            archives[-1].write_bytes(answer.content)
        await platform.settle()
    epochs = set()
    for archive in archives:
        restored = Emulator(Settings(api_key=KEY, clock="manual", state_file=archive))
        try:
            (run,) = restored.store.documents("run")
            named = restored.store.checkpoints(run["id"])
            epochs.add(tuple(c["epoch"] for c in named))
            for checkpoint in named:
                assert restored.files.checkpoint(run["id"], checkpoint["name"]).is_file()
            assert restored.files.dataset(run["dataset_id"]).is_file()
        finally:
            restored.close()
    assert len(epochs) >= 3  # taken at different points of the run


def test_a_snapshot_a_kill_interrupted_leaves_nothing_behind(tmp_path: Path) -> None:
    leftover = tmp_path / ".state-abc123"
    leftover.mkdir()
    (leftover / "qcog-mock.sqlite3").write_bytes(b"half")
    Emulator(Settings(api_key=KEY, data_dir=tmp_path)).close()
    assert not leftover.exists()


def test_state_save_asks_a_running_server_through_its_control_plane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "running.tar.gz"
    with QcogPlatform.socket(Settings(api_key=KEY, clock="manual")) as server:
        assert server.backend is not None
        server.backend.control.advance(seconds=120)
        url = server.base_url.removesuffix("/api")
        with pytest.raises(SystemExit) as exited:
            main(["state", "save", str(archive), "--url", url, "--api-key", "not-the-key"])
        assert exited.value.code == 1 and "Invalid API key" in capsys.readouterr().err
        assert not archive.exists()
        with pytest.raises(SystemExit) as exited:
            main(["state", "save", str(archive), "--url", url, "--api-key", KEY])
        assert exited.value.code == 0, capsys.readouterr().err
    assert manifest(archive)["clock"] == "2026-01-01T00:02:00Z"
    assert archive.stat().st_mode & 0o077 == 0
