"""Fault plans: what goes wrong on purpose, per run (``params.emulator.faults``) and server-wide.

The README's "Fault plans" table says what each fault does. A ``FaultPlan`` is built once per
attempt or delivery, from the run in hand and the server-wide plan, and answers "does a fault
apply here?"; the engine and the webhook outbox record what they inject in the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from qcog_mock.mockserver.errors import Invalid, pydantic_problems


def _integer(value: Any) -> Any:
    # JSON has one number type: accept 3600 and 3600.0, refuse 3600.5, "3600" and true.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integer)]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrashFault(_Fault):
    """Raise at the start of ``epoch`` (1-based, counted over the whole run) in ``attempt``."""

    type: Literal["crash"]
    attempt: Integer = Field(ge=1)
    epoch: Integer = Field(ge=1)
    message: str = "injected crash"


class HangFault(_Fault):
    """Attempt ``attempt`` stops progressing (from ``epoch``, else at once) until it times out."""

    type: Literal["hang"]
    attempt: Integer = Field(ge=1)
    epoch: Integer | None = Field(default=None, ge=1)


class SlowFault(_Fault):
    """From ``from_epoch`` on, every epoch costs ``epoch_seconds``."""

    type: Literal["slow"]
    from_epoch: Integer = Field(ge=1)
    epoch_seconds: float = Field(gt=0)


WebhookFaultType = Literal["webhook_down", "webhook_timeout", "webhook_duplicate", "webhook_delay"]


class WebhookFault(_Fault):
    """Deliveries misbehave: for the first ``first`` messages, or ``seconds`` after submission."""

    type: WebhookFaultType
    first: Integer | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)
    status: Integer = Field(default=503, ge=300, le=599)
    delay_seconds: float = Field(default=600, gt=0, le=366 * 86400)


Fault = Annotated[CrashFault | HangFault | SlowFault | WebhookFault, Field(discriminator="type")]
_FAULT_LIST = pydantic.TypeAdapter(list[Fault])


def parse_faults(plan: Any) -> list[Fault]:
    """A validated fault plan; ``Invalid`` naming the entry at fault."""
    try:
        return _FAULT_LIST.validate_python(plan)
    except pydantic.ValidationError as error:
        raise Invalid(pydantic_problems("faults", error)) from None


@dataclass(frozen=True)
class FaultPlan:
    """The faults that apply to one run: its own, then the server-wide ones."""

    faults: tuple[Fault, ...] = ()

    @classmethod
    def of(cls, run_faults: list[Fault], server_faults: list[Fault]) -> FaultPlan:
        return cls((*run_faults, *server_faults))

    def crash(self, attempt: int, epoch: int) -> CrashFault | None:
        for fault in self.faults:
            if isinstance(fault, CrashFault) and (fault.attempt, fault.epoch) == (attempt, epoch):
                return fault
        return None

    def hang(self, attempt: int, epoch: int) -> HangFault | None:
        for fault in self.faults:
            if not isinstance(fault, HangFault) or fault.attempt != attempt:
                continue
            if fault.epoch is None or epoch >= fault.epoch:
                return fault
        return None

    def slow(self, epoch: int) -> SlowFault | None:
        """The last slow fault in force at ``epoch`` (a later entry overrides an earlier one)."""
        found = None
        for fault in self.faults:
            if isinstance(fault, SlowFault) and epoch >= fault.from_epoch:
                found = fault
        return found

    def webhook(
        self, kind: WebhookFaultType, *, age: float, count: Callable[[], int]
    ) -> WebhookFault | None:
        """The first ``kind`` fault in force for a run ``age`` simulated seconds old: within
        its ``seconds`` of the run's submission, or while ``count()`` (the run's messages or
        delivery attempts so far, as the outbox counts them for ``kind``) is below ``first``."""
        for fault in self.faults:
            if not isinstance(fault, WebhookFault) or fault.type != kind:
                continue
            if fault.seconds is not None and age < fault.seconds:
                return fault
            if fault.first is not None and count() < fault.first:
                return fault
        return None


class ServerFaults:
    """The server-wide fault plan (``/_emulator/faults``), kept in the store's state."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.plan: list[Fault] = parse_faults(store.setting("faults") or [])

    def set(self, plan: Any) -> list[Fault]:
        self.plan = parse_faults(plan)
        self.store.set_setting("faults", [fault.model_dump() for fault in self.plan])
        return list(self.plan)

    def for_run(self, run_faults: list[Fault]) -> FaultPlan:
        return FaultPlan.of(run_faults, self.plan)
