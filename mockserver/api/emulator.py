"""``/_emulator``: the control plane outside the Qognitive contract (clock, reset, timeline)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import PlatformDep, number, optional, require_admin
from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.errors import Invalid
from qcog_mock.mockserver.faults import Fault

# The control plane is the operator's: every route needs an admin key or the admin's basic
# credentials (the README's Security section).
router = APIRouter(prefix="/_emulator", tags=["emulator"], dependencies=[Depends(require_admin)])


@router.get("/clock", response_model=schemas.Clock)
def clock(platform: PlatformDep) -> schemas.Clock:
    return platform.control.clock_state()


@router.post(
    "/clock/advance",
    response_model=schemas.Clock,
    description="Advance by 'seconds' or to 'to'; returns once every event due by then is done.",
)
def advance(body: schemas.ClockAdvance, platform: PlatformDep) -> schemas.Clock:
    to = None
    if body.to is not None:
        try:
            to = parse_time(body.to)
        except (ValueError, OverflowError):
            raise Invalid(f"to: '{body.to}' is not an ISO-8601 time.") from None
    return platform.control.advance(body.seconds, to)


@router.post(
    "/clock/settle",
    response_model=schemas.Settled,
    description=(
        "Wait until nothing is due (in auto mode: until every run has gone as far as it can), "
        "at most 'timeout' wall seconds; 'settled' says whether it got there."
    ),
)
def settle(platform: PlatformDep, timeout: float = 600.0) -> schemas.Settled:
    if timeout <= 0:
        raise Invalid("timeout: must be greater than 0 (wall seconds).")
    return platform.control.settle(timeout)


@router.put("/clock", response_model=schemas.Clock)
def set_mode(body: schemas.ClockModeUpdate, platform: PlatformDep) -> schemas.Clock:
    return platform.control.set_clock_mode(body.mode, body.speed)


@router.post(
    "/reset",
    response_model=schemas.Reset,
    description=(
        "Back to where the server started (its --seed file's or --state archive's state, else "
        "the defaults): resources, files, timeline, clock."
    ),
)
def reset(platform: PlatformDep) -> schemas.Reset:
    platform.reset()
    return schemas.Reset(reset=True, clock=platform.control.clock_state())


@router.get(
    "/state",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}},
    description=(
        "The whole state as one archive (database, datasets, checkpoints, clock, webhook "
        "secret): what qcog-mock state save writes, and serve --state starts from."
    ),
)
def save_state(platform: PlatformDep) -> Response:
    with tempfile.TemporaryDirectory(prefix="qcog-mock-state-") as folder:
        archive = Path(folder) / "state.tar.gz"
        platform.save_state(archive)
        content = archive.read_bytes()
    return Response(
        content,
        media_type="application/gzip",
        headers={"Content-Disposition": 'attachment; filename="qcog-mock-state.tar.gz"'},
    )


@router.get("/events", response_model=list[schemas.Event])
def events(
    platform: PlatformDep,
    run_id: str | None = None,
    after: str | None = None,
    limit: str | None = None,
) -> list[schemas.Event]:
    return platform.timeline.events(
        optional(run_id), number("after", after, 0), number("limit", limit, 10_000)
    )


@router.get(
    "/webhooks",
    response_model=schemas.WebhookSettings,
    description="The signing secret, the server-wide endpoints, the schedule.",
)
def webhooks(platform: PlatformDep) -> schemas.WebhookSettings:
    return platform.control.webhook_settings()


@router.post(
    "/webhooks/endpoints",
    response_model=schemas.WebhookSettings,
    description='Add a server-wide endpoint: {"url": …}.',
)
def add_endpoint(body: schemas.WebhookEndpoint, platform: PlatformDep) -> schemas.WebhookSettings:
    return platform.control.add_webhook_endpoint(body.url)


@router.delete("/webhooks/endpoints", response_model=schemas.WebhookSettings)
def remove_endpoint(url: str, platform: PlatformDep) -> schemas.WebhookSettings:
    return platform.control.remove_webhook_endpoint(url)


@router.get(
    "/webhooks/deliveries",
    response_model=list[schemas.Delivery],
    description="Every delivery with each attempt's status code, error, simulated and wall time.",
)
def deliveries(
    platform: PlatformDep, run_id: str | None = None, status: str | None = None
) -> list[schemas.Delivery]:
    return platform.control.deliveries(optional(run_id), optional(status))


@router.post(
    "/webhooks/deliveries/{delivery_id}/resend",
    response_model=schemas.Delivery,
    description="Send it again now.",
)
def resend(delivery_id: int, platform: PlatformDep) -> schemas.Delivery:
    return platform.control.resend(delivery_id)


@router.get(
    "/faults",
    response_model=list[Fault],
    description="The server-wide fault plan, applied to every run.",
)
def faults(platform: PlatformDep) -> list[Fault]:
    return platform.control.faults()


@router.put(
    "/faults",
    response_model=list[Fault],
    description=(
        "Replace the server-wide fault plan: a list of crash, hang, slow, webhook_down, "
        "webhook_timeout, webhook_duplicate and webhook_delay faults (see the README)."
    ),
)
def set_faults(plan: list[dict[str, Any]], platform: PlatformDep) -> list[Fault]:
    return platform.control.set_faults(plan)


@router.delete("/faults", response_model=list[Fault], description="Remove every server-wide fault.")
def clear_faults(platform: PlatformDep) -> list[Fault]:
    return platform.control.set_faults([])
