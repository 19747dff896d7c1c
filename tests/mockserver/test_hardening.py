"""Hardening, round 2: nothing acknowledged is lost, nothing stored can break a read."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import resource
import socket
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver import jsontext
from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.dashboard.access import RedactToken
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, Settings
from qcog_mock.mockserver.store import NameTaken, Store
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.servers import free_port, serve_in_thread
from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel
from tests.mockserver.helpers import (
    KEY,
    Platform,
    dataset_csv,
    emulator,
    hyperparameters,
    until,
)
from tests.mockserver.test_dashboard import browser, signed_in
from tests.mockserver.test_restart import server

ROUNDS = 3
SMALLEST_LOSS = {"metric": "loss", "value": "smallest"}

# Writes racing for one name ------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_parallel_uploads_of_one_name_acknowledge_only_the_one_that_is_kept(
    platform: Platform, round_: int
) -> None:
    # Large enough that each upload is still being received when the others arrive.
    contents = [dataset_csv(rows=4000 + i, features=20) for i in range(6)]
    answers = await asyncio.gather(*(platform.upload("same", c) for c in contents))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 5, [a.text for a in answers]
    kept = next(a.json() for a in answers if a.status_code == 201)
    listed = (await platform.client.get(f"{platform.project}/datasets")).json()
    assert [(d["id"], d["name"]) for d in listed] == [(kept["id"], "same")]
    conflict = next(a for a in answers if a.status_code == 409)
    assert "override=True" in conflict.json()["detail"]


async def test_parallel_uploads_with_override_keep_exactly_one(platform: Platform) -> None:
    answers = await asyncio.gather(
        *(platform.upload("same", dataset_csv(rows=40 + i), override="true") for i in range(6))
    )
    assert {a.status_code for a in answers} == {201}
    listed = (await platform.client.get(f"{platform.project}/datasets")).json()
    assert len(listed) == 1 and listed[0]["id"] in {a.json()["id"] for a in answers}


@pytest.mark.torch
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_parallel_deployments_of_one_name_make_one_deployment_and_one_event(
    platform: Platform, backend: Emulator, round_: int
) -> None:
    run = await platform.submit(await platform.dataset_id())
    await platform.advance(3600)
    assert (await platform.run(run["id"]))["status"] == "completed"
    deployments = f"{platform.project}/experiment_runs/{run['id']}/deployments"
    answers = await asyncio.gather(
        *(
            platform.client.post(
                deployments, json={"deployment_name": "d", "criterion": SMALLEST_LOSS}
            )
            for i in range(10)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 9, [a.text for a in answers]
    kept = next(a.json() for a in answers if a.status_code == 201)
    assert [d["id"] for d in (await platform.client.get(deployments)).json()] == [kept["id"]]
    created = [e for e in await platform.events(run["id"]) if e["type"] == "deployment.created"]
    assert len(created) == 1


def test_a_name_in_use_is_never_replaced_by_another_document() -> None:
    store = Store(":memory:")
    store.insert("dataset", {"id": "a", "name": "same"}, scope="p")
    for write in (store.insert, store.put):
        with pytest.raises(NameTaken):
            write("dataset", {"id": "b", "name": "same"}, scope="p")
    assert [d["id"] for d in store.documents("dataset", "p")] == ["a"]
    store.put("dataset", {"id": "a", "name": "same", "size": 2}, scope="p")  # an update
    assert store.documents("dataset", "p") == [{"id": "a", "name": "same", "size": 2}]


# Input that cannot be stored and read back ---------------------------------------------------

SURROGATE = '"a \\udfff b"'  # valid JSON; the text it stands for has no UTF-8 encoding


def raw_json(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


async def test_a_lone_surrogate_is_refused_naming_the_field_and_nothing_is_stored(
    platform: Platform,
) -> None:
    run = platform.run_body(await platform.dataset_id())
    text = json.dumps(run).replace('"a test run"', SURROGATE)
    answer = await platform.client.post(f"{platform.project}/experiment_runs", **raw_json(text))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("Invalid request: description: contains '\\udfff'")
    listed = await platform.client.get(f"{platform.project}/experiment_runs")
    assert listed.status_code == 200 and listed.json() == []
    # In a webhook endpoint's URL and a fault's message, where the control plane reads them back.
    endpoint = await platform.client.post(
        "/_emulator/webhooks/endpoints", **raw_json('{"url": "http://127.0.0.1:9/\\udfff"}')
    )
    fault = await platform.client.put(
        "/_emulator/faults",
        **raw_json('[{"type": "crash", "attempt": 1, "epoch": 2, "message": "\\ud800"}]'),
    )
    assert (endpoint.status_code, fault.status_code) == (422, 422)
    assert "url: contains" in endpoint.json()["detail"]
    assert "0.message: contains" in fault.json()["detail"]
    for read in ("/_emulator/webhooks", "/_emulator/faults"):
        assert (await platform.client.get(read)).status_code == 200
    # A pair of surrogates is one character, and fine.
    pair = text.replace(SURROGATE, '"a \\ud83d\\ude00 b"')
    created = await platform.client.post(f"{platform.project}/experiment_runs", **raw_json(pair))
    assert created.status_code == 201 and created.json()["description"] == "a \U0001f600 b"


async def test_nul_characters_are_refused_in_bodies_and_queries(platform: Platform) -> None:
    created = await platform.client.post(
        f"{platform.project}/datasets",
        json={"name": "local", "configuration": {"dataset_location": "/tmp/a\x00.csv"}},
    )
    assert created.status_code == 422
    assert "configuration.dataset_location: contains a NUL" in created.json()["detail"]
    uploaded = await platform.upload("data\x00")
    assert uploaded.status_code == 422 and "name: contains a NUL" in uploaded.json()["detail"]


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e999"])
async def test_non_finite_numbers_in_a_body_are_refused_naming_the_field(
    platform: Platform, number: str
) -> None:
    run = platform.run_body(await platform.dataset_id())
    run["params"]["hyperparameters"]["beta"] = "BETA"
    text = json.dumps(run).replace('"BETA"', number)
    answer = await platform.client.post(f"{platform.project}/experiment_runs", **raw_json(text))
    assert answer.status_code == 422, answer.text
    assert "params.hyperparameters.beta: " in answer.json()["detail"]
    assert "not a JSON number" in answer.json()["detail"]


def test_the_store_refuses_text_it_could_not_give_back() -> None:
    store = Store(":memory:")
    with pytest.raises(UnicodeEncodeError):
        store.insert("dataset", {"id": "a", "name": "x", "description": "\udfff"})
    assert store.documents("dataset") == []


def test_json_answers_are_strict_whatever_was_stored() -> None:
    stored = {"loss": [1.0, math.nan, math.inf, -math.inf], "text": "old \udfff record"}
    text = jsontext.dumps(stored)
    assert json.loads(text, parse_constant=refuse) == {
        "loss": [1.0, None, None, None],
        "text": "old \udfff record",
    }
    text.encode("utf-8")  # an escape, not a lone surrogate


def refuse(token: str) -> None:
    raise AssertionError(f"{token} is not JSON")


# A diverging run ------------------------------------------------------------------------------


@pytest.mark.torch
async def test_a_diverging_run_reads_everywhere_with_null_losses(
    backend: Emulator, platform: Platform, make_webhook_receiver: Any
) -> None:
    receiver: WebhookReceiver = make_webhook_receiver(backend.webhooks.secret)
    sgd = {"type": "SGD", "default_params": {"lr": 1e6}}
    hp = hyperparameters(optimizer_config=sgd, epochs=4)
    answer = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json={**platform.run_body(await platform.dataset_id()), "params": {"hyperparameters": hp}},
        params={"local_webhook_url": receiver.url},
    )
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    await platform.advance(3600)
    got = await platform.client.get(f"{platform.project}/experiment_runs/{run_id}")
    assert got.status_code == 200
    run = json.loads(got.text, parse_constant=refuse)
    assert run["status"] == "completed"
    history = run["metrics"]["val_loss_history"]
    assert len(history) == 4 and None in history
    listed = await platform.client.get(f"{platform.project}/experiment_runs")
    assert listed.status_code == 200 and json.loads(listed.text, parse_constant=refuse)
    page = await (await signed_in(platform)).get(f"/_emulator/ui/runs/{run_id}")
    assert page.status_code == 200 and "<svg" in page.text
    await platform.settle()
    receiver.wait_for("run.completed", run_id=run_id)
    bodies = [json.loads(r["body"], parse_constant=refuse) for r in receiver.requests]
    assert bodies[-1]["type"] == "run.completed"
    assert bodies[-1]["data"]["run"]["metrics"]["val_loss_history"] == [None] * 4


# DNS rebinding ------------------------------------------------------------------------------

REBOUND = {"Host": "attacker.example:8001", "Origin": "http://attacker.example:8001"}


async def test_a_rebound_name_reaches_nothing(platform: Platform) -> None:
    admin = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
    for method, path, headers in (
        ("POST", "/_emulator/reset", admin),
        ("GET", "/api/v1/projects", {}),
        ("GET", "/_emulator/ui/", admin),
        ("POST", "/_emulator/ui/login", {}),
    ):
        answer = await platform.client.request(method, path, headers={**headers, **REBOUND})
        assert answer.status_code == 421, (path, answer.text)
        assert "--allowed-host" in answer.json()["detail"]
    # Loopback names, addresses and this test client's name are this server.
    for host in ("localhost:8001", "127.0.0.1:8001", "[::1]:8001", "app.localhost", "testserver"):
        answer = await platform.client.get("/api/v1/whoami", headers={"Host": host})
        assert answer.status_code == 200, host


async def test_a_name_the_operator_allows_is_answered() -> None:
    async with emulator(allowed_hosts=("qcog.internal",)) as platform:
        allowed = await platform.client.get("/api/v1/whoami", headers={"Host": "qcog.internal"})
        other = await platform.client.get("/api/v1/whoami", headers={"Host": "qcog.evil"})
    assert (allowed.status_code, other.status_code) == (200, 421)


async def test_a_browser_post_must_say_where_it_comes_from(platform: Platform) -> None:
    web = await signed_in(platform)
    advance = {"action": "advance", "duration": "1h"}
    bare = await web.post("/_emulator/ui/clock", data=advance, headers={"Origin": ""})
    assert bare.status_code == 403 and "Origin or Referer" in bare.json()["detail"]
    referred = await web.post(
        "/_emulator/ui/clock",
        data=advance,
        headers={"Origin": "", "Referer": "http://testserver/_emulator/ui/"},
    )
    assert referred.status_code == 303
    assert (await platform.story.clock())["now"] == "2026-01-01T01:00:00Z"


# Credentials at rest and the well-known key -------------------------------------------------


def test_a_data_dir_served_with_the_defaults_keeps_no_working_default_key_beyond_loopback(
    tmp_path: Path,
) -> None:
    data = tmp_path / "state"
    with QcogPlatform.in_process(Settings(data_dir=data)):  # once served with the defaults
        pass
    store = Store(data / "qcog-mock.sqlite3")
    (seeded,) = store.documents("api_key")
    store.delete("api_key", seeded["id"])  # as versions before digests stored it: in clear
    clear = {**seeded, "name": DEFAULT_API_KEY, "x_api_key": DEFAULT_API_KEY}
    store.put("api_key", clear)
    store.close()
    port = free_port()
    credentials = ("--admin-username", "operator", "--admin-password", "s3cret")
    with server(data, port, "--host", "0.0.0.0", *credentials) as process:
        base = f"http://127.0.0.1:{port}/api/v1/whoami"
        default = httpx.get(base, headers={"Authorization": f"x-api-key {DEFAULT_API_KEY}"})
        configured = httpx.get(base, headers={"Authorization": f"x-api-key {KEY}"})
        # Read while it serves: the rewritten keys are in the file, not only in its journal.
        database = b"".join(p.read_bytes() for p in data.glob("qcog-mock.sqlite3*"))
        process.terminate()
    assert (default.status_code, configured.status_code) == (401, 200)
    assert KEY.encode() not in database and DEFAULT_API_KEY.encode() not in database
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "qcog-mock.sqlite3").stat().st_mode) == 0o600


@pytest.mark.torch
async def test_tenants_files_are_the_operators_alone(tmp_path: Path) -> None:
    async with emulator(data_dir=tmp_path / "state", start_delay=0) as platform:
        run = await platform.submit(
            await platform.dataset_id(), hyperparameters=hyperparameters(epochs=2)
        )
        await platform.advance(3600)
        assert (await platform.run(run["id"]))["status"] == "completed"
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    folders = [p for p in (tmp_path / "state").rglob("*") if p.is_dir()]
    assert {p.suffix for p in files} >= {".csv", ".pt", ".sqlite3"}
    assert {
        p.name: oct(stat.S_IMODE(p.stat().st_mode))
        for p in files
        if stat.S_IMODE(p.stat().st_mode) != 0o600
    } == {}
    assert {
        p.name: oct(stat.S_IMODE(p.stat().st_mode))
        for p in folders
        if stat.S_IMODE(p.stat().st_mode) != 0o700
    } == {}


async def test_a_created_key_is_shown_once_and_stored_as_a_digest(backend: Emulator) -> None:
    record, key = backend.identity.create_api_key(backend.store.setting("seed_user"), None)
    assert key.startswith("qcog-mock-")
    (stored,) = [k for k in backend.store.documents("api_key") if k["id"] == record.id]
    assert "x_api_key" not in stored and key not in json.dumps(stored)
    assert stored["name"].startswith("sha256:") and stored["hint"].endswith("…")
    assert backend.identity.authenticate(f"x-api-key {key}").user


# Webhooks never hold the kernel ------------------------------------------------------------


class Misbehaving:
    """A loopback HTTP receiver that misbehaves on purpose, one connection at a time:
    ``trickle`` sends one byte of its status line every ``every`` seconds and never finishes;
    ``flood`` answers 500 with a body of ``size`` bytes."""

    def __init__(self, mode: str, every: float = 0.5, size: int = 0) -> None:
        self.mode, self.every, self.size = mode, every, size
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.connections = 0
        self.written = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with connection:
                connection.recv(65536)
                with contextlib.suppress(OSError):  # the client gave up on us: as it should
                    self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        if self.mode == "trickle":
            for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                if self.stop.wait(self.every):
                    return
                connection.sendall(bytes([byte]))
        else:
            head = f"HTTP/1.1 500 Oops\r\nContent-Length: {self.size}\r\n\r\n".encode()
            connection.sendall(head)
            chunk = b"x" * 65536
            while self.written < self.size and not self.stop.is_set():
                self.written += connection.send(chunk)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


async def other_project_run(platform: Platform) -> tuple[httpx.AsyncClient, str, str]:
    """A run of a second project (its own user and key), submitted: (client, project, run)."""
    admin = {"headers": {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}}
    user = await platform.client.post(
        "/api/v1/users", json={"email": "b@x.io", "name": "b", "system_role": "user"}, **admin
    )
    project = await platform.client.post(
        "/api/v1/projects",
        json={"name": "tenant-b", "user_associated": [{"user_id": user.json()["id"]}]},
        **admin,
    )
    key = await platform.client.post(
        "/api/v1/api_keys",
        json={"user_id": user.json()["id"], "project_id": project.json()["id"]},
        **admin,
    )
    other = httpx.AsyncClient(
        transport=platform.client._transport,
        base_url="http://testserver",
        headers={"Authorization": f"x-api-key {key.json()['x_api_key']}"},
    )
    base = f"/api/v1/projects/{project.json()['id']}"
    uploaded = await other.post(
        f"{base}/datasets/upload",
        params={"name": "data", "format": "csv"},
        files={"file": ("data.csv", dataset_csv())},
    )
    body = platform.run_body(uploaded.json()["id"], name="b-run")
    body["params"]["hyperparameters"]["epochs"] = 2
    run = await other.post(f"{base}/experiment_runs", json=body)
    assert run.status_code == 201, run.text
    return other, base, run.json()["id"]


@pytest.mark.torch
async def test_a_trickling_receiver_does_not_hold_back_another_tenants_run() -> None:
    trickler = Misbehaving("trickle", every=0.5)
    try:
        # A deadline far longer than the test: the trickler's lane is busy throughout.
        async with emulator(clock="auto", webhook_timeout=600) as platform:
            dataset = await platform.dataset_id()
            slow = await platform.client.post(
                f"{platform.project}/experiment_runs",
                json=platform.run_body(dataset, name="a-run"),
                params={"local_webhook_url": trickler.url},
            )
            assert slow.status_code == 201
            assert platform.backend is not None
            sender = platform.backend.webhooks.sender
            await asyncio.to_thread(until, lambda: trickler.connections >= 1)
            other, base, run_id = await other_project_run(platform)
            try:
                while (await other.get(f"{base}/experiment_runs/{run_id}")).json()[
                    "status"
                ] != "completed":
                    assert sender.busy(), "the trickler's delivery ended before the run"
                    await asyncio.sleep(0.01)
            finally:
                await other.aclose()
            # Still the first POST to the trickler, on its one connection.
            assert sender.busy() and trickler.connections == 1
    finally:
        trickler.close()


async def test_a_delivery_has_a_total_deadline_and_reads_little_of_an_error() -> None:
    trickler = Misbehaving("trickle", every=0.2)
    flood = Misbehaving("flood", size=50 * 1024 * 1024)
    try:
        async with emulator(webhook_timeout=1) as platform:
            dataset = await platform.dataset_id()
            for name, url in (("t", trickler.url), ("f", flood.url), ("x", BAD_PORT)):
                answer = await platform.client.post(
                    f"{platform.project}/experiment_runs",
                    json=platform.run_body(dataset, name=name),
                    params={"local_webhook_url": url},
                )
                assert answer.status_code == 201, answer.text
            await platform.advance(1)  # each run's first two events: one attempt each
            deliveries = (await platform.client.get("/_emulator/webhooks/deliveries")).json()
    finally:
        trickler.close()
        flood.close()
    first = {d["url"]: d["attempts"][0] for d in deliveries if d["attempts"]}
    assert "within 1 s (the delivery deadline)" in first[trickler.url]["error"]
    assert first[flood.url]["error"] == "HTTP 500: " + "x" * 64
    assert flood.written < flood.size  # it was not read to the end
    assert first[BAD_PORT]["error"] is not None  # refused by the client: failed, not stuck
    stuck = [d for d in deliveries if d["status"] == "pending" and not d["attempts"]]
    assert stuck == []


BAD_PORT = "http://127.0.0.1:99999/hook"


# Bounds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"input_operator_count": 5000}, "input_operator_count: 5000 is more than"),
        (
            {"input_operator_count": 1000, "hilbert_space_dims": 64},
            "the model would have 4,100,096 parameters",
        ),
        (
            {"hsm_model": "pauli", "qubits_count": 6, "input_operator_count": 1000},
            "the model would have 4,100,096 parameters",
        ),
    ],
)
async def test_models_beyond_the_parameter_limits_are_refused(
    platform: Platform, overrides: dict[str, Any], expected: str
) -> None:
    dataset = await platform.dataset_id()
    hp = hyperparameters(**overrides)
    if hp["hsm_model"] == "pauli":
        del hp["hilbert_space_dims"]
    answer = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json={**platform.run_body(dataset), "params": {"hyperparameters": hp}},
    )
    assert answer.status_code == 422 and expected in answer.json()["detail"], answer.text


async def test_run_metadata_is_capped(platform: Platform) -> None:
    body = platform.run_body(await platform.dataset_id())
    body["metadata"] = {"blob": "x" * 70_000}
    answer = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("metadata: 70,")


async def test_an_anonymous_body_is_refused_before_it_is_read(platform: Platform) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b" " * 65536

    for path in (f"{platform.project}/experiment_runs", "/_emulator/reset"):
        sent = 0
        answer = await platform.client.post(
            path, content=body(), headers={"Authorization": "", "Content-Type": "application/json"}
        )
        assert answer.status_code == 401 and "API key" in answer.json()["detail"]
        assert sent <= 1  # at most the chunk already in flight


async def test_json_bodies_have_16_megabytes_by_default(platform: Platform) -> None:
    body = platform.run_body(await platform.dataset_id())
    body["description"] = "x" * (17 * 1024 * 1024)
    answer = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert answer.status_code == 413 and f"{16 * 1024 * 1024} bytes" in answer.json()["detail"]


@pytest.mark.torch
async def test_a_run_keeps_its_latest_checkpoints_its_best_and_its_deployed_ones() -> None:
    async with emulator(keep_checkpoints=3, start_delay=0) as platform:
        dataset = await platform.dataset_id()
        minutes = {"epoch_seconds": 60}
        run = await platform.submit(
            dataset, hyperparameters=hyperparameters(epochs=10), emulator=minutes
        )
        await platform.advance(150)  # two epochs
        path = f"{platform.project}/experiment_runs/{run['id']}"
        deployed = await platform.client.post(
            f"{path}/deployments", json={"deployment_name": "d", "checkpoint_name": "epoch-0002"}
        )
        assert deployed.status_code == 201, deployed.text
        await platform.advance(3600)
        assert platform.backend is not None
        store, files = platform.backend.store, platform.backend.files
        rows = store.checkpoints(run["id"])
        best = min(rows, key=lambda c: c["metrics"]["loss"])["name"]
        kept = {c["name"] for c in rows}
        assert kept == {"epoch-0002", best, "epoch-0008", "epoch-0009", "epoch-0010"}
        on_disk = {p.stem for p in (files.root / "checkpoints" / run["id"]).glob("*.pt")}
        assert on_disk == kept
        shown = await platform.run(run["id"])
        assert shown["disk_bytes"] == sum(
            files.checkpoint(run["id"], name).stat().st_size for name in kept
        )
        features = synthetic_panel(dates=1, assets=5, features=4, seed=1).drop(columns=[TARGET])
        inference = await platform.client.post(
            f"{path}/deployments/{deployed.json()['id']}/inferences/sync",
            json={"dataset_file": features.to_csv(index=False)},
        )
        assert inference.status_code == 200, inference.text


# Files of attempts ----------------------------------------------------------------------------


@pytest.mark.torch
async def test_attempt_result_folders_go_when_their_attempts_end(tmp_path: Path) -> None:
    async with emulator(data_dir=tmp_path / "state", start_delay=0) as platform:
        dataset = await platform.dataset_id()
        runs = [
            await platform.submit(dataset, name, hyperparameters=hyperparameters(epochs=3))
            for name in ("a", "b", "c")
        ]
        await platform.advance(3600)
        assert [(await platform.run(r["id"]))["status"] for r in runs] == ["completed"] * 3
        attempts = tmp_path / "state" / "attempts"
        assert list(attempts.rglob("*")) == []
    # A folder a killed server's worker left (or a worker elsewhere still writes into), and
    # the checkpoints of a run that no longer exists, are gone at the next start.
    stray = attempts / "some-run" / "1.7"
    stray.mkdir(parents=True)
    (stray / "000001.json").write_text("{}")
    orphan = tmp_path / "state" / "checkpoints" / "gone-run"
    orphan.mkdir()
    with QcogPlatform.in_process(Settings(data_dir=tmp_path / "state")):  # a start
        pass
    assert not stray.exists() and not orphan.exists()


# Signing in ---------------------------------------------------------------------------------


async def test_a_session_is_not_the_token_and_ends_at_sign_out(platform: Platform) -> None:
    web = await signed_in(platform)
    session = web.cookies["qcog_mock_ui"]
    token = platform.dashboard_token
    assert session != token
    assert (await web.get("/_emulator/ui/")).status_code == 200
    out = await web.post("/_emulator/ui/logout")
    assert out.status_code == 303
    replaying = browser(platform)
    replaying.cookies.set("qcog_mock_ui", session)
    replayed = await replaying.get("/_emulator/ui/")
    assert replayed.status_code == 303  # back to the sign-in form: the session is over


async def test_failed_sign_ins_are_logged_and_throttled(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    web = browser(platform)
    wrong = {"username": "admin", "password": "guess"}
    answers = [(await web.post("/_emulator/ui/login", data=wrong)).status_code for _ in range(12)]
    assert answers == [401] * 10 + [429] * 2
    assert "Failed sign-in as 'admin' from 127.0.0.1" in caplog.text
    right = await web.post("/_emulator/ui/login", data={"username": "admin", "password": "admin"})
    assert right.status_code == 429 and "try again in" in right.json()["detail"]


def test_the_access_log_never_shows_the_sign_in_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/_emulator/ui/login?token=s3cr3t&next=/x", "1.1", 303), None,
    )  # fmt: skip
    assert RedactToken().filter(record)
    assert "s3cr3t" not in record.getMessage() and "token=…&next=/x" in record.getMessage()


def test_serve_holds_as_many_connections_as_the_system_allows(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    port = free_port()
    with server(tmp_path, port, preexec=lambda: resource.setrlimit(
        resource.RLIMIT_NOFILE, (256, hard)
    )) as process:  # fmt: skip
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert line.split()[3] == expected  # the soft limit: raised from 256


# Many runs ----------------------------------------------------------------------------------


async def test_many_runs_are_read_a_page_at_a_time(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    runs = f"{platform.project}/experiment_runs"
    for i in range(230):  # pending on the manual clock: nothing trains
        answer = await platform.client.post(runs, json=platform.run_body(dataset, f"r{i:03d}"))
        assert answer.status_code == 201
    newest = await platform.client.get(runs, params={"limit": 3, "descending": "true"})
    assert [r["name"] for r in newest.json()] == ["r229", "r228", "r227"]
    later = await platform.client.get(
        runs,
        params={
            "limit": 2,
            "skip": 200,
            "descending": "false",
            "experiment_id": platform.experiment_id,
        },
    )
    assert [r["name"] for r in later.json()] == ["r200", "r201"]
    other = await platform.client.get(runs, params={"experiment_id": "nope"})
    assert other.status_code == 404
    web = await signed_in(platform)
    first = (await web.get("/_emulator/ui/")).text
    assert first.count('<tr data-run="') == 100 and "page 1 of 3 (230 runs)" in first
    last = (await web.get("/_emulator/ui/", params={"page": 3})).text
    assert last.count('<tr data-run="') == 30 and 'data-run="r000"' in last


async def test_wrong_basic_credentials_are_throttled_too(platform: Platform) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:guess").decode()}
    codes = [
        (await platform.client.get("/_emulator/clock", headers=wrong)).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    # Keys are not passwords to guess: a key still works from the same address.
    assert (await platform.client.get("/_emulator/clock")).status_code == 200


async def test_a_server_error_tells_the_client_the_connection_closes(
    backend: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(backend)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/broken", broken)  # a route with a bug, for this test only
    with serve_in_thread(app) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"x-api-key {KEY}"}
        ) as c:
            answer = await c.get("/api/v1/broken")
    assert answer.status_code == 500 and answer.headers["connection"] == "close"
    assert answer.json()["detail"] == "Internal error: RuntimeError: a bug"
    # The id a user quotes is the one the server's log line names.
    trace = answer.headers["x-trace-id"]
    assert f"Unhandled error on GET /api/v1/broken (trace {trace})" in caplog.text


def test_a_connection_that_never_finishes_its_request_is_closed(backend: Emulator) -> None:
    with serve_in_thread(create_app(backend), header_seconds=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.settimeout(30)
            slow.sendall(b"GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
            assert slow.recv(1024) == b""  # closed by the server, without an answer
        with httpx.Client(base_url=url, headers={"Authorization": f"x-api-key {KEY}"}) as client:
            first = client.get("/api/v1/whoami")
            second = client.get("/api/v1/whoami")  # the same connection, kept alive
        assert (first.status_code, second.status_code) == (200, 200)
