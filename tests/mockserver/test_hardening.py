"""Hardening, round 2: nothing acknowledged is lost, nothing stored can break a read."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver import jsontext
from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, Settings
from qcog_mock.mockserver.store import NameTaken, Store
from qcog_mock.mockserver.testing.servers import serve_in_thread
from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver
from tests.mockserver.helpers import KEY, Platform, dataset_csv, emulator, hyperparameters
from tests.mockserver.test_dashboard import signed_in
from tests.mockserver.test_restart import free_port, server

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


def at_once(backend: Emulator, count: int, method: str, path: str, **request: Any) -> list[Any]:
    """``count`` copies of one request sent at the same moment to a real server of ``backend``
    (each from its own thread and connection)."""
    start = threading.Barrier(count)

    def send(client: httpx.Client) -> httpx.Response:
        start.wait()
        return client.request(method, path, **request)

    with serve_in_thread(create_app(backend)) as url, ThreadPoolExecutor(count) as threads:
        clients = [
            httpx.Client(base_url=url, headers={"Authorization": f"x-api-key {KEY}"})
            for _ in range(count)
        ]
        try:
            return list(threads.map(send, clients))
        finally:
            for client in clients:
                client.close()


def test_a_name_in_use_is_never_replaced_by_another_document() -> None:
    store = Store(":memory:")
    store.insert("dataset", {"id": "a", "name": "same"}, scope="p")
    for write in (store.insert, store.put):
        with pytest.raises(NameTaken):
            write("dataset", {"id": "b", "name": "same"}, scope="p")
    assert [d["id"] for d in store.list("dataset", "p")] == ["a"]
    store.put("dataset", {"id": "a", "name": "same", "size": 2}, scope="p")  # an update
    assert store.list("dataset", "p") == [{"id": "a", "name": "same", "size": 2}]


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
    assert store.list("dataset") == []


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
    Emulator(Settings(data_dir=data)).close()  # once served with the defaults
    store = Store(data / "qcog-mock.sqlite3")
    (seeded,) = store.list("api_key")
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


async def test_a_created_key_is_shown_once_and_stored_as_a_digest(backend: Emulator) -> None:
    made = backend.identity.create_api_key(backend.store.setting("seed_user"), None)
    assert made["x_api_key"].startswith("qcog-mock-")
    (stored,) = [k for k in backend.store.list("api_key") if k["id"] == made["id"]]
    assert "x_api_key" not in stored and made["x_api_key"] not in json.dumps(stored)
    assert stored["name"].startswith("sha256:") and stored["hint"].endswith("…")
    assert backend.identity.authenticate(f"x-api-key {made['x_api_key']}").user
