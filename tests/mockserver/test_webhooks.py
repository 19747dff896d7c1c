"""Webhooks: signed, in timeline order, retried on the simulated clock, kept in an outbox."""

from __future__ import annotations

import io
import itertools
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from qcog_mock.client import EmulatorClient, wait_for_run
from qcog_mock.mockserver.clock import parse_time, wall_time
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.webhooks.outbox import BACKOFF_SECONDS
from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver
from qcog_mock.mockserver.webhooks.signing import sign
from tests.mockserver.helpers import Platform, dataset_csv, emulator, hyperparameters

HOUR = 3600


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhooks"  # nothing listens there any more


@pytest.fixture
def receiver(backend: Emulator, make_webhook_receiver) -> WebhookReceiver:
    return make_webhook_receiver(backend.webhooks.secret)  # the plugin's fixture


def timeline_types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if e["type"] != "checkpoint.saved"]


@pytest.mark.torch
async def test_the_guides_job_sends_its_timeline_as_signed_webhooks(
    environment: QcogPlatform, backend: Emulator, receiver: WebhookReceiver
) -> None:
    async with environment.client() as client:
        await client.project_client.upload_dataset(io.BytesIO(dataset_csv()), "training-dat  ")
        submitted = await client.run_experiment(
            "long-running-job",
            "This is a long running job",
            experiment_name="pytorch-models",
            dataset_name="training-dat  ",
            instance="cpu",
            parameters={
                "hyperparameters": hyperparameters(epochs=8),
                "cpu_count": 4,
                "memory": 16384,
                "timeout": 3600 * 24,
                "retries": 3,
                "emulator": {"epoch_seconds": 10 * HOUR},  # two epochs per attempt
            },
            local_webhook_url=receiver.url,
        )
        run_id = submitted["response"]["experiment_run"]["id"]
        run = await wait_for_run(client, "long-running-job")
        async with EmulatorClient.for_client(client) as emulator:
            # Deliveries are made beside the simulation: settled, every one has been answered.
            await emulator.settle()
            timeline = await emulator.events(run_id)

    assert run["status"] == "completed" and len(run["attempts"]) == 4
    expected = timeline_types(timeline)
    assert receiver.types(run_id) == expected
    assert expected.count("attempt.timed_out") == 3 and expected[-1] == "run.completed"
    assert [e["timestamp"] for e in receiver.events] == [
        e["time"] for e in timeline if e["type"] != "checkpoint.saved"
    ]
    # An independent implementation of the spec accepts every delivery.
    verifier = Webhook(backend.webhooks.secret)
    for request in receiver.requests:
        payload = verifier.verify(request["body"], request["headers"])
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["x-qcog-mock-time"] == payload["timestamp"]
        assert abs(int(headers["webhook-timestamp"]) - wall_time()) < 300  # wall clock
    last = receiver.events[-1]
    assert last["data"]["run"]["status"] == "completed"
    assert last["data"]["run"]["metrics"]["epochs_completed"] == 8
    timed_out = next(e for e in receiver.events if e["type"] == "attempt.timed_out")
    assert "timed out after 86400 s" in timed_out["data"]["reason"]
    assert len({e["id"] for e in receiver.events}) == len(receiver.events)


async def test_a_failing_receiver_gets_every_event_on_the_backoff_schedule(
    backend: Emulator, platform: Platform
) -> None:
    with WebhookReceiver(backend.webhooks.secret, fail_first=4) as receiver:
        dataset = await platform.dataset_id()
        body = platform.run_body(dataset, emulator={"epoch_seconds": 60})
        created = await platform.client.post(
            f"{platform.project}/experiment_runs",
            json=body,
            params={"local_webhook_url": receiver.url},
        )
        run_id = created.json()["id"]
        await platform.advance(48 * HOUR)
        timeline = await platform.events(run_id)
        assert sorted(receiver.types(run_id)) == sorted(timeline_types(timeline))
        deliveries = (await platform.client.get("/_emulator/webhooks/deliveries")).json()
    assert all(d["status"] == "delivered" for d in deliveries)
    retried = [d for d in deliveries if len(d["attempts"]) > 1]
    assert retried, "the first deliveries needed retries"
    for delivery in retried:
        times = [parse_time(a["simulated_at"]) for a in delivery["attempts"]]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps == list(BACKOFF_SECONDS[: len(gaps)])
        assert [a["status_code"] for a in delivery["attempts"]][:-1] == [503] * (len(times) - 1)
        assert delivery["attempts"][-1]["status_code"] == 200
    ids = [r["headers"]["webhook-id"] for r in receiver.requests if r["answer"] == 503]
    assert len(ids) == 4  # and every one of them came again under the same id:
    assert set(ids) <= {e["id"] for e in receiver.events}


async def test_a_run_the_engine_fails_sends_its_run_failed_webhook(
    backend: Emulator, receiver: WebhookReceiver, platform: Platform
) -> None:
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset)
    created = await platform.client.post(
        f"{platform.project}/experiment_runs", json=body, params={"local_webhook_url": receiver.url}
    )
    run_id = created.json()["id"]
    # A record this version reads but cannot start an attempt from (written by hand):
    # "running" with no attempt, a status the transition table leaves no way on from.
    doc = backend.store.get("run", run_id)
    assert doc is not None and doc["attempts"] == []
    backend.store.put("run", {**doc, "status": "running"}, scope=doc["project_id"])
    await platform.advance(HOUR)
    run = await platform.run(run_id)
    assert run["status"] == "failed"
    assert run["errors"][-1].startswith("Attempt 1 could not begin: the emulator failed: ")
    assert receiver.types(run_id) == ["run.created", "run.pending", "run.failed"]
    assert receiver.events[-1]["data"]["reason"] == run["errors"][-1]


@pytest.mark.torch
async def test_a_receiver_that_never_answers_leaves_failed_deliveries_and_the_run_unharmed(
    platform: Platform,
) -> None:
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset, emulator={"epoch_seconds": 60})
    created = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json=body,
        params={"local_webhook_url": closed_port_url()},
    )
    run_id = created.json()["id"]
    await platform.advance(24 * HOUR)
    assert (await platform.run(run_id))["status"] == "completed"
    deliveries = (
        await platform.client.get("/_emulator/webhooks/deliveries", params={"run_id": run_id})
    ).json()
    assert deliveries and all(d["status"] == "failed" for d in deliveries)
    assert all(len(d["attempts"]) == len(BACKOFF_SECONDS) + 1 for d in deliveries)
    assert all("ConnectError" in d["attempts"][-1]["error"] for d in deliveries)


def test_a_tampered_body_or_a_wrong_secret_fails_verification(backend: Emulator) -> None:
    secret = backend.webhooks.secret
    body = json.dumps({"type": "run.completed", "data": {"run": {"id": "r"}}})
    timestamp = int(wall_time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, "msg_1", timestamp, body),
    }
    Webhook(secret).verify(body, headers)  # the genuine one passes the independent check
    with WebhookReceiver(secret) as receiver:
        genuine = httpx.post(receiver.url, content=body, headers=headers)
        tampered = httpx.post(
            receiver.url, content=body.replace("completed", "failed"), headers=headers
        )
    with WebhookReceiver("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB") as stranger:
        wrong_secret = httpx.post(stranger.url, content=body, headers=headers)
    assert genuine.status_code == 200 and receiver.types() == ["run.completed"]
    assert tampered.status_code == 400 and "verification failed" in tampered.json()["detail"]
    assert wrong_secret.status_code == 400 and stranger.events == []
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("completed", "failed"), headers)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://127.0.0.1/hook", "not an http(s) URL"),
        ("not a url", "not an http(s) URL"),
        ("http://example.com/hook", "--allow-remote-webhooks"),
        ("http://10.1.2.3:8080/hook", "--allow-remote-webhooks"),
    ],
)
async def test_bad_webhook_urls_are_rejected_at_submission(
    platform: Platform, url: str, fragment: str
) -> None:
    dataset = await platform.dataset_id()
    response = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json=platform.run_body(dataset),
        params={"local_webhook_url": url},
    )
    assert response.status_code == 422
    assert (
        "local_webhook_url" in response.json()["detail"] and fragment in response.json()["detail"]
    )


@pytest.mark.parametrize("settings_overrides", [{"allow_remote_webhooks": True}])
async def test_remote_webhook_urls_are_allowed_with_the_flag(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    response = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json=platform.run_body(dataset),
        params={"local_webhook_url": "https://example.com/hook"},
    )
    assert response.status_code == 201


@pytest.mark.torch
async def test_server_endpoints_checkpoint_events_and_resend(
    backend: Emulator, receiver: WebhookReceiver, platform: Platform
) -> None:
    backend.webhooks.checkpoints = True
    settings = (
        await platform.client.post("/_emulator/webhooks/endpoints", json={"url": receiver.url})
    ).json()
    assert settings["endpoints"] == [receiver.url] and settings["secret"].startswith("whsec_")
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, emulator={"epoch_seconds": 60})  # no local_webhook_url
    await platform.advance(HOUR)
    types = receiver.types(run["id"])
    assert types.count("checkpoint.saved") == 6 and types[-1] == "run.completed"
    first = (await platform.client.get("/_emulator/webhooks/deliveries")).json()[0]
    resent = (
        await platform.client.post(f"/_emulator/webhooks/deliveries/{first['id']}/resend")
    ).json()
    assert resent["status"] == "pending"
    await platform.advance(1)
    again = [r for r in receiver.requests if r["headers"]["webhook-id"] == first["message_id"]]
    assert len(again) == 2  # the same message id, delivered twice (at least once)
    assert receiver.types(run["id"]) == types  # the receiver's view de-duplicates
    removed = await platform.client.delete(
        "/_emulator/webhooks/endpoints", params={"url": receiver.url}
    )
    assert removed.json()["endpoints"] == []
    missing = await platform.client.delete(
        "/_emulator/webhooks/endpoints", params={"url": receiver.url}
    )
    assert missing.status_code == 404


@pytest.mark.torch
async def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    async with emulator(data_dir=tmp_path) as platform:
        dataset = await platform.dataset_id()
        body = platform.run_body(dataset, emulator={"epoch_seconds": 60})
        await platform.client.post(
            f"{platform.project}/experiment_runs", json=body, params={"local_webhook_url": url}
        )
        await platform.advance(HOUR)  # the receiver is down: every delivery waits for a retry
        assert platform.backend is not None
        secret = platform.backend.webhooks.secret

    async with emulator(data_dir=tmp_path) as restarted:
        assert restarted.backend is not None
        assert restarted.backend.webhooks.secret == secret  # kept in the data dir
        with WebhookReceiver(secret, port=port) as receiver:
            await restarted.advance(24 * HOUR)
            deliveries = (await restarted.client.get("/_emulator/webhooks/deliveries")).json()
    assert all(d["status"] == "delivered" for d in deliveries)
    assert receiver.types()[-1] == "run.completed"
    assert len(receiver.events) == len(deliveries)


def test_the_plugin_fixture_reads_the_secret_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import httpx
        from qcog_mock.mockserver.clock import wall_time
        from qcog_mock.mockserver.webhooks.signing import sign

        def test_receive(webhook_receiver, monkeypatch):
            body = '{"type": "run.completed", "data": {"run": {"id": "r"}}}'
            now = int(wall_time())
            headers = {"webhook-id": "msg_9", "webhook-timestamp": str(now),
                       "webhook-signature": sign(webhook_receiver.secret, "msg_9", now, body)}
            answer = httpx.post(webhook_receiver.url, content=body, headers=headers)
            assert answer.status_code == 200
            assert webhook_receiver.wait_for("run.completed", run_id="r")["type"] == "run.completed"
        """
    )
    secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    monkeypatch.setenv("QCOG_MOCK_WEBHOOK_SECRET", secret)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    result.assert_outcomes(passed=1)


def test_qcog_mock_listen_prints_verified_events() -> None:
    secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    url = closed_port_url()
    port = url.rsplit(":", 1)[1].split("/")[0]
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "listen"]
    command += ["--port", port, "--secret", secret]
    listener = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert "Listening for verified webhooks" in listener.stdout.readline()
        body = json.dumps(
            {
                "type": "attempt.timed_out",
                "id": "msg_3",
                "timestamp": "2026-01-02T00:00:05Z",
                "data": {"run": {"id": "r", "name": "long-running-job", "attempt": 1},
                         "reason": "timed out after 86400 s"},
            }
        )  # fmt: skip
        now = int(wall_time())
        headers = {
            "webhook-id": "msg_3",
            "webhook-timestamp": str(now),
            "webhook-signature": sign(secret, "msg_3", now, body),
        }
        assert httpx.post(url, content=body, headers=headers).status_code == 200
        line = listener.stdout.readline()
        assert "[2026-01-02T00:00:05Z] attempt.timed_out" in line
        assert "long-running-job" in line and "timed out after 86400 s" in line
        assert httpx.post(url, content=body + " ", headers=headers).status_code == 400
    finally:
        listener.kill()
        listener.wait()
