"""Datasets of a project: CSV upload, creation from a local location, listing and lookup."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import PlatformDep, ProjectIdDep, flag, number
from qcog_mock.mockserver.documents import Dataset
from qcog_mock.mockserver.errors import Invalid

router = APIRouter(prefix="/projects/{pid}/datasets", tags=["datasets"])


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON body on a GET: the client sends ``{limit, skip}`` that way."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise Invalid("body: not valid JSON.") from None
    return body if isinstance(body, dict) else {}


@router.get(
    "",
    response_model=list[Dataset],
    description="limit/skip come from the query or a JSON body (the body wins).",
)
def list_datasets(
    pid: ProjectIdDep,
    platform: PlatformDep,
    body: Annotated[dict[str, Any], Depends(json_body)],
    limit: str | None = None,
    skip: str | None = None,
) -> list[Dataset]:
    limit_value = body.get("limit", number("limit", limit, 100))
    skip_value = body.get("skip", number("skip", skip, 0))
    found = platform.datasets.page(
        pid, number("limit", limit_value, 100), number("skip", skip_value, 0)
    )
    return [dataset for dataset in found]


@router.post("", response_model=Dataset, status_code=201)
def create_dataset(
    pid: ProjectIdDep, body: schemas.DatasetCreate, platform: PlatformDep
) -> Dataset:
    return platform.datasets.create(pid, body)


@router.post(
    "/upload",
    response_model=Dataset,
    status_code=201,
    description="Multipart CSV upload in the field 'file'. chunk_size is advisory and ignored.",
)
def upload_dataset(
    pid: ProjectIdDep,
    platform: PlatformDep,
    name: str,
    file: Annotated[UploadFile, File(description="The CSV file")],
    format: str = "csv",
    configuration_version: str = "0.0.1",
    override: str | None = None,
    chunk_size: str | None = None,
    description: str | None = None,
) -> Dataset:
    return platform.datasets.upload(
        pid,
        name,
        file.file,
        format=format,
        override=flag("override", override, False),
        description=description,
        configuration_version=configuration_version,
    )


@router.get("/{value}", response_model=Dataset)
def get_dataset(
    pid: ProjectIdDep, value: str, platform: PlatformDep, identifier: str = "id"
) -> Dataset:
    return platform.datasets.get(pid, value, identifier)
