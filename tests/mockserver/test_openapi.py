"""The OpenAPI document is true to the answers: schemathesis sends generated requests to every
operation, with the real project, run and deployment ids, and checks every answer against the
document — no server error, no undocumented status, no body off its schema."""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from tests.mockserver.helpers import KEY, connected, hyperparameters

pytestmark = pytest.mark.torch  # every test here trains

AUTH = {"Authorization": f"x-api-key {KEY}"}
# No server error, no undocumented status, content type and body as documented, a 405 that says
# what is allowed. (Whether every schema-valid value is accepted is not claimed: names, for one,
# are checked beyond what the document states.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    unsupported_method,
]


# schemathesis reads the document as the module is collected, so the module's emulator starts
# then, the one way (QcogPlatform); the module's fixture closes it, or the interpreter's exit
# does if none of the module's tests ran.
STARTED = ExitStack()
SETTINGS = Settings(api_key=KEY, clock="manual")
# The app itself, not behind the stall watch: schemathesis calls it directly.
ENVIRONMENT = STARTED.enter_context(QcogPlatform.in_process(SETTINGS, stall_seconds=0))
atexit.register(STARTED.close)
assert isinstance(ENVIRONMENT.transport, httpx.ASGITransport)
APP = ENVIRONMENT.transport.app
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Reset wipes the seeded ids for every later example; it has its own tests.
schema = schema.exclude(path="/_emulator/reset")
IDS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[None]:
    """A trained, deployed run: the ids the generated requests use."""

    async def prepare() -> dict[str, str]:
        async with connected(ENVIRONMENT) as platform:
            client = platform.client
            dataset = await platform.dataset_id("data")
            run = await platform.submit(
                dataset, hyperparameters=hyperparameters(epochs=2), emulator={"epoch_seconds": 60}
            )
            await platform.advance(3600)
            deployed = await client.post(
                f"{platform.project}/experiment_runs/{run['id']}/deployments",
                json={"deployment_name": "d", "checkpoint_name": "epoch-0002"},
            )
            return {
                "pid": platform.project_id,
                "rid": run["id"],
                "did": deployed.json()["id"],
                "value": run["id"],
            }

    IDS.update(asyncio.run(prepare()))
    yield
    STARTED.close()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_is_documented_and_no_request_is_a_server_error(case: Any) -> None:
    for name in list(case.path_parameters or {}):
        if name in IDS:
            case.path_parameters[name] = IDS[name]
    if case.path.endswith("/clock/settle"):
        case.query = {**(case.query or {}), "timeout": 1}  # a bounded wait per example
    case.call_and_validate(headers=AUTH, checks=CHECKS)


async def test_a_body_that_cannot_be_parsed_is_a_422_on_every_route() -> None:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=AUTH
    ) as c:
        project = f"/api/v1/projects/{IDS['pid']}"
        answers = [
            await c.request(method, path, content=b"{not json", headers=headers)
            for method, path, headers in (
                ("POST", f"{project}/experiment_runs", {"content-type": "application/json"}),
                ("PUT", "/_emulator/faults", {"content-type": "application/json"}),
                ("POST", "/api/v1/users", {"content-type": "application/json"}),
                (
                    "POST",
                    f"{project}/datasets/upload?name=x",
                    {"content-type": "multipart/form-data; boundary=zz"},
                ),
            )
        ]
    assert [a.status_code for a in answers] == [422] * 4
    assert all(a.json()["detail"].startswith("Invalid request") for a in answers)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
        document = (await anonymous.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            problems = {s for s in operation["responses"] if s.startswith("4")}
            assert {"401", "404", "422"} <= problems, (method, path)
            schema_ref = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema_ref == {"$ref": "#/components/schemas/Problem"}, (method, path)
