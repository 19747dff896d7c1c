"""Hardening: no key reads the host, the control plane is the operator's, defaults are not kept
beyond loopback, bodies are capped, and odd input is a 4xx."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.platform import DataDirInUse
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from tests.mockserver.helpers import KEY, Platform, dataset_csv, emulator

SECRET = "root:secret-line-of-the-host\n"


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def user_key(platform: Platform, role: str = "user") -> str:
    """An API key of a new non-admin (or admin) user of the seed project."""
    admin = {"headers": basic("admin", "admin")}
    user = await platform.client.post(
        "/api/v1/users", json={"email": f"{role}@x.io", "name": role, "system_role": role}, **admin
    )
    key = await platform.client.post(
        "/api/v1/api_keys",
        json={"user_id": user.json()["id"], "project_id": platform.project_id},
        **admin,
    )
    assert key.status_code == 201, key.text
    return key.json()["x_api_key"]


def dataset_body(location: str) -> dict[str, Any]:
    return {"name": "local", "configuration": {"dataset_location": location}}


# 1. Local paths -----------------------------------------------------------------------------


async def test_without_a_dataset_root_no_key_reads_a_local_path(
    platform: Platform, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(SECRET)
    datasets = f"{platform.project}/datasets"
    answers = [
        await platform.client.post(datasets, json=dataset_body(location))
        for location in (str(secret), f"file://{secret}", "/proc/self/environ", "/no/such/file")
    ]
    # The same refusal whether or not the file exists: no oracle, no content, no server path.
    assert {a.status_code for a in answers} == {403}
    for answer in answers:
        detail = answer.json()["detail"]
        assert "--dataset-root" in detail and "root:secret" not in detail
    assert (await platform.client.get(datasets)).json() == []


async def test_paths_outside_the_roots_are_refused_symlinks_included(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text(SECRET)
    (allowed / "link.csv").symlink_to(outside / "secret.csv")
    (allowed / "data.csv").write_bytes(dataset_csv(rows=10))
    async with emulator(dataset_roots=(allowed,)) as platform:
        datasets = f"{platform.project}/datasets"
        for location in (
            str(allowed / "link.csv"),  # a symlink out of the root
            str(allowed / ".." / "outside" / "secret.csv"),
            "../outside/secret.csv",  # relative paths start at the first root
            str(outside / "missing.csv"),  # outside and absent: the same answer
        ):
            refused = await platform.client.post(datasets, json=dataset_body(location))
            assert refused.status_code == 403, location
            assert "outside the folders this server allows" in refused.json()["detail"]
            assert "root:secret" not in refused.text
        inside = await platform.client.post(datasets, json=dataset_body("data.csv"))
        assert inside.status_code == 201 and inside.json()["number_of_rows"] == 10
        absent = await platform.client.post(datasets, json=dataset_body(str(allowed / "no.csv")))
        assert absent.status_code == 404


# 2. The control plane ----------------------------------------------------------------------


async def test_the_control_plane_answers_the_admin_only(platform: Platform) -> None:
    routes = [
        ("GET", "/_emulator/clock"),
        ("POST", "/_emulator/reset"),
        ("GET", "/_emulator/webhooks"),
        ("GET", "/_emulator/webhooks/deliveries"),
        ("GET", "/_emulator/events"),
        ("PUT", "/_emulator/faults"),
        ("POST", "/_emulator/webhooks/endpoints"),
        ("POST", "/_emulator/clock/settle"),
    ]
    anonymous = httpx.AsyncClient(
        transport=platform.client._transport, base_url="http://testserver"
    )
    user = await user_key(platform)
    for method, path in routes:
        answer = await anonymous.request(method, path)
        assert answer.status_code == 401, (method, path)
        as_user = await platform.client.request(
            method, path, headers={"Authorization": f"x-api-key {user}"}
        )
        assert as_user.status_code == 403, (method, path)
    assert (await platform.client.get("/_emulator/clock")).status_code == 200  # the admin key
    by_basic = await anonymous.get("/_emulator/webhooks", headers=basic("admin", "admin"))
    assert by_basic.status_code == 200 and by_basic.json()["secret"].startswith("whsec_")


async def test_blocking_control_calls_are_bounded(backend: Emulator, platform: Platform) -> None:
    held = [backend.control._blocking.acquire(blocking=False) for _ in range(4)]
    assert all(held)  # every slot taken, as by four advances still running
    try:
        busy = await platform.client.post("/_emulator/clock/advance", json={"seconds": 5})
        assert busy.status_code == 429 and "try again" in busy.json()["detail"]
        # The API itself keeps answering.
        assert (await platform.client.get("/api/v1/whoami")).status_code == 200
    finally:
        for _ in held:
            backend.control._blocking.release()
    assert (await platform.client.post("/_emulator/clock/advance", json={"seconds": 5})).is_success


# 3. Credentials ----------------------------------------------------------------------------


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QCOG_API_KEY", "a-key")
    monkeypatch.setenv("QCOG_MOCK_ADMIN_USERNAME", "operator")
    monkeypatch.setenv("QCOG_MOCK_ADMIN_PASSWORD", "s3cret")
    settings = Settings.from_environment()
    assert (settings.api_key, settings.admin_username, settings.admin_password) == (
        "a-key",
        "operator",
        "s3cret",
    )
    assert settings.default_credentials == []
    assert len(Settings().default_credentials) == 2


async def test_configured_admin_credentials_replace_admin_admin() -> None:
    async with emulator(admin_username="operator", admin_password="s3cret") as platform:
        users = "/api/v1/users/admin_user"
        assert (
            await platform.client.get(users, headers=basic("admin", "admin"))
        ).status_code == 401
        ok = await platform.client.get(users, headers=basic("operator", "s3cret"))
        assert ok.status_code == 200
        # Non-ASCII credentials are refused, not a server error.
        odd = await platform.client.get(users, headers=basic("adminé", "pässword"))
        assert odd.status_code == 401


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_defaults_are_refused_beyond_loopback_and_exposure_is_announced() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    refused = serve("--host", "0.0.0.0", env=env)
    assert refused.returncode == 1
    assert "WARNING: qcog-mock listens on 0.0.0.0" in refused.stderr
    assert "refusing to listen on 0.0.0.0" in refused.stderr
    assert "qcog-mock-api-key" in refused.stderr and "admin/admin" in refused.stderr


async def test_only_admins_list_users_and_other_projects(platform: Platform) -> None:
    user = {"Authorization": f"x-api-key {await user_key(platform)}"}
    by_email = await platform.client.get("/api/v1/users", params={"email": "x"}, headers=user)
    assert by_email.status_code == 403
    assert (await platform.client.get("/api/v1/projects", headers=user)).status_code == 403
    own = await platform.client.get(
        "/api/v1/projects", params={"project_name": "qcog-mock"}, headers=user
    )
    assert own.status_code == 200
    admin = basic("admin", "admin")
    other = await platform.client.post(
        "/api/v1/projects", json={"name": "other", "user_associated": []}, headers=admin
    )
    named = await platform.client.get(
        "/api/v1/projects", params={"project_name": "other"}, headers=user
    )
    by_id = await platform.client.get(f"/api/v1/projects/{other.json()['id']}", headers=user)
    assert named.status_code == 403 and by_id.status_code == 403


# 11. Body caps ------------------------------------------------------------------------------


async def test_bodies_over_their_cap_are_refused_at_once_or_while_streaming() -> None:
    async with emulator(max_upload_bytes=1000, max_json_bytes=2000) as platform:
        upload = f"{platform.project}/datasets/upload"
        declared = await platform.client.post(
            upload,
            params={"name": "big", "format": "csv"},
            content=b"x" * 100,
            headers={"content-length": str(10**9), "content-type": "multipart/form-data; b=x"},
        )
        assert declared.status_code == 413 and "--max-upload-mb" in declared.json()["detail"]

        async def chunks(total: int) -> Any:
            for _ in range(total // 500):
                yield b"y" * 500

        streamed = await platform.client.post(
            f"{platform.project}/experiment_runs",
            content=chunks(10_000),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413 and "--max-json-mb" in streamed.json()["detail"]
        json_body = await platform.client.post(
            f"{platform.project}/datasets", json={"name": "n" * 3000}
        )
        assert json_body.status_code == 413
        assert (await platform.client.get(f"{platform.project}/datasets")).json() == []


# 14. Odd input is a 4xx ---------------------------------------------------------------------


async def test_odd_input_is_a_client_error(platform: Platform) -> None:
    resend = await platform.client.post(f"/_emulator/webhooks/deliveries/{2**64}/resend")
    assert resend.status_code == 404


# 8. What a webhook target answers ----------------------------------------------------------


async def test_a_failed_deliverys_answer_is_kept_short(platform: Platform) -> None:
    page = "<html>" + "internal page of a local service " * 40 + "</html>"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(500)
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dataset = await platform.dataset_id()
        body = platform.run_body(dataset)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        created = await platform.client.post(
            f"{platform.project}/experiment_runs", json=body, params={"local_webhook_url": url}
        )
        assert created.status_code == 201
        await platform.advance(10)
        deliveries = (await platform.client.get("/_emulator/webhooks/deliveries")).json()
    finally:
        server.shutdown()
    errors = [a["error"] for d in deliveries for a in d["attempts"]]
    assert errors and all(e.startswith("HTTP 500: <html>internal page") for e in errors)
    assert max(len(e) for e in errors) <= len("HTTP 500: ") + 64


# 12. The data dir -----------------------------------------------------------------------------


def test_one_server_per_data_dir(tmp_path: Path) -> None:
    settings = Settings(api_key=KEY, data_dir=tmp_path)
    in_use = pytest.raises(DataDirInUse, match="another qcog-mock server uses the data dir")
    with QcogPlatform.in_process(settings), in_use, QcogPlatform.in_process(settings):
        pass
    with QcogPlatform.in_process(settings):  # free again once the first has stopped
        pass


async def test_a_start_removes_orphans_and_rechecks_stored_endpoints(tmp_path: Path) -> None:
    async with emulator(data_dir=tmp_path, allow_remote_webhooks=True) as platform:
        kept = await platform.dataset_id("kept")
        added = await platform.client.post(
            "/_emulator/webhooks/endpoints", json={"url": "http://203.0.113.9/hook"}
        )
        assert added.status_code == 200
    (tmp_path / "datasets" / "left-by-a-kill.csv").write_text("a,b\n1,2\n")
    partial = tmp_path / "checkpoints" / "some-run" / "epoch-0001.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half")

    async with emulator(data_dir=tmp_path) as platform:  # without --allow-remote-webhooks
        webhooks = (await platform.client.get("/_emulator/webhooks")).json()
        assert webhooks["endpoints"] == []
    assert sorted(p.stem for p in (tmp_path / "datasets").glob("*.csv")) == [kept]
    assert not partial.exists()
