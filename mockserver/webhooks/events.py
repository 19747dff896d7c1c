"""Which of a run's timeline events are sent as webhooks: the one rule, for the outbox and for
the assertions and scenarios that compare what a receiver got with the timeline."""

from __future__ import annotations

CHECKPOINT_EVENT = "checkpoint.saved"


def is_webhook_event(event_type: str, *, checkpoints: bool = False) -> bool:
    """Whether a run's timeline event of this type is sent as a webhook: all are but the
    emulator's own fault records, and checkpoints only where the server sends them
    (``--webhook-checkpoints``)."""
    if event_type.startswith("fault."):
        return False
    return checkpoints or event_type != CHECKPOINT_EVENT
