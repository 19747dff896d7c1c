"""Typed documents: the run status table is enforced, storage round-trips, the edge is ISO."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, get_args, get_origin, get_type_hints

import httpx
import pytest
from fastapi.responses import Response
from fastapi.routing import APIRoute

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api import admin, catalog, datasets, deployments, emulator, runs
from qcog_mock.mockserver.documents import (
    RUN_TRANSITIONS,
    ApiKey,
    Attempt,
    Checkpoint,
    Dataset,
    Deployment,
    Environment,
    Experiment,
    IllegalTransition,
    Membership,
    Project,
    Run,
    User,
)
from qcog_mock.mockserver.engine.retry import after_attempt
from qcog_mock.mockserver.records import Records
from qcog_mock.mockserver.runparams import validate_params
from qcog_mock.mockserver.store import NameTaken, Store
from tests.mockserver.helpers import hyperparameters


def new_run() -> Run:
    params = validate_params(
        {"hyperparameters": hyperparameters(), "timeout": 3600, "retries": 2},
        max_retries=10,
        allowed_gpus=[],
    )
    return Run(
        id="r", seq=1, name="job", description=None, project_id="p", experiment_id="e",
        environment_id="v", dataset_id="d", params=params, metadata={}, local_webhook_url=None,
        created_at=0.0, updated_at=0.0,
    )  # fmt: skip


def test_only_the_tables_transitions_are_allowed() -> None:
    run = new_run()
    with pytest.raises(IllegalTransition, match="None → running"):
        run.move_to("running")
    for status in ("pending", "running", "pending", "running", "completed"):
        run.move_to(status)  # type: ignore[arg-type]
    for status in ("pending", "running", "failed", "completed"):
        assert ("completed", status) not in RUN_TRANSITIONS
        with pytest.raises(IllegalTransition):
            run.move_to(status)  # type: ignore[arg-type]


def test_a_run_round_trips_through_storage_and_renders_iso_at_the_edge() -> None:
    run = new_run()
    run.move_to("pending")
    run.attempts.append(Attempt(number=1, started_at=5.0, deadline=3605.0, resumed_from_epoch=0))
    again = Run.from_doc(run.to_doc())
    assert again == run and again.params.hyperparameters == run.params.hyperparameters
    public = again.public(now=65.0).model_dump(exclude_unset=True)
    assert public["attempts"][0]["started_at"] == "1970-01-01T00:00:05Z"
    assert public["runtime_seconds"] == 60.0 and public["runtime_limit_seconds"] == 3 * 3600
    assert (public["timeout"], public["retries"], public["max_attempts"]) == (3600, 2, 3)
    assert "seq" not in public and public["params"]["hyperparameters"]["targets"]


def test_the_retry_rule_alone() -> None:
    retry = after_attempt("timed_out", 1, 3, "timed out", at=100.0, retry_delay=30.0)
    assert retry is not None and (retry.status, retry.retry_at) == ("pending", 130.0)
    last = after_attempt("crashed", 3, 3, "crashed", at=100.0, retry_delay=30.0)
    assert last is not None and last.status == "failed" and "Retries exhausted" in str(last.error)
    fatal = after_attempt("crashed", 1, 3, "bad data", at=1.0, retry_delay=30.0, retryable=False)
    assert fatal is not None and fatal.status == "failed" and fatal.retry_at is None
    assert after_attempt("cancelled", 1, 3, None, at=1.0, retry_delay=30.0) is None


async def test_a_resource_whose_answer_is_its_document_is_its_own_response_model(
    client: httpx.AsyncClient,
) -> None:
    # One shape, once: the route answers the stored document, validated by its dataclass.
    dataset = Dataset(
        id="d", name="data", description=None, project_id="p", configuration={},
        number_of_rows=3, number_of_columns=2, columns=["x", "y"],
        created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z", size_bytes=12,
    )  # fmt: skip
    assert Dataset.from_doc(dataset.to_doc()) == dataset
    schema = (await client.get("/openapi.json")).json()
    described = schema["components"]["schemas"]
    for document in (Dataset, Deployment, Environment, Experiment, User, Project, Membership):
        assert set(described[document.__name__]["properties"]) == {
            f.name for f in fields(document)
        }, document.__name__


def test_a_key_is_stored_as_its_digest_and_shown_once_with_the_same_fields() -> None:
    assert [f.name for f in fields(ApiKey)] + ["x_api_key"] == list(schemas.ApiKey.model_fields)
    record = ApiKey(
        id="k", name="sha256:00", hint="qcog-mock-…", user_id="u", project_id=None,
        created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert "qcog-mock-secret" not in str(record.to_doc())
    answer = schemas.ApiKey(**record.to_doc(), x_api_key="qcog-mock-secret")  # as the route
    assert answer.model_dump() == {**record.to_doc(), "x_api_key": "qcog-mock-secret"}


def test_a_run_answers_every_field_of_its_response_model_and_no_other() -> None:
    # Run.public builds the response model the OpenAPI document shows: each field is given
    # (none falls back to a default unseen), and nothing undocumented rides along as an extra.
    run = new_run()
    run.move_to("pending")
    documented = set(schemas.Run.model_fields)
    answer = run.public(0.0)
    assert answer.model_fields_set == documented - {"error"}  # "error" only once failed
    assert not answer.model_extra and "error" not in answer.model_dump(exclude_unset=True)
    run.errors.append("node lost")
    run.move_to("failed")
    answer = run.public(0.0)
    assert answer.model_fields_set == documented and not answer.model_extra
    assert answer.error == "node lost"


def test_a_checkpoint_answers_the_fields_of_its_response_model() -> None:
    checkpoint = Checkpoint(
        name="epoch-0001", epoch=1, attempt=1, run_id="r", path="checkpoints/r/epoch-0001.pt",
        metrics={"val_loss": 0.5}, created_at=0.0, size_bytes=10,
    )  # fmt: skip
    answer = checkpoint.public()
    assert answer.model_fields_set == set(schemas.Checkpoint.model_fields)
    assert not answer.model_extra and answer.created_at == "1970-01-01T00:00:00Z"


def test_no_route_answers_an_untyped_dict() -> None:
    # Every answer of the platform's API and the control plane is a typed resource or response
    # model: what crosses from platform/ to api/ has one shape, the one the document describes.
    routers = (admin, catalog, datasets, deployments, emulator, runs)
    routes = [r for m in routers for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 40
    untyped = [
        f"{sorted(route.methods)} {route.path}"
        for route in routes
        if _untyped(get_type_hints(route.endpoint).get("return"))
        or (route.response_model is None and not _file(route))
    ]
    assert untyped == []


def _file(route: APIRoute) -> bool:
    """A route that answers a file (a state archive), not JSON: its answer is a Response."""
    answer = get_type_hints(route.endpoint).get("return")
    return isinstance(answer, type) and issubclass(answer, Response)


def _untyped(answer: Any) -> bool:
    if get_origin(answer) is list:
        return _untyped(get_args(answer)[0])
    return answer is None or answer is Any or answer is dict or get_origin(answer) is dict


def test_a_collection_reads_and_writes_its_type_and_keeps_to_its_scope() -> None:
    records = Records(Store(":memory:"))
    dataset = Dataset(
        id="d", name="data", description=None, project_id="p", configuration={},
        number_of_rows=3, number_of_columns=2, columns=["x", "y"],
        created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    records.datasets.insert(dataset)
    assert records.datasets.get("d") == dataset and records.datasets.find("data", "p") == dataset
    assert records.datasets.get("d", scope="another-project") is None  # scoped by its project
    assert records.datasets.find("data", "another-project") is None
    with pytest.raises(NameTaken):  # a name is unique within its scope
        records.datasets.insert(replace(dataset, id="e"))
    records.datasets.insert(replace(dataset, id="e", project_id="q"))
    assert [d.id for d in records.datasets.all("p")] == ["d"] and records.datasets.count() == 2
    records.datasets.put(replace(dataset, size_bytes=9))  # an update, by id
    assert records.datasets.get("d") == replace(dataset, size_bytes=9)
    records.datasets.delete("d")
    assert records.datasets.get("d") is None
