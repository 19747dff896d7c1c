"""Server settings: one frozen object built by the CLI or a test, passed to ``create_app``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qcog_mock.mockserver.clock import DEFAULT_START, ClockMode, parse_time

DEFAULT_API_KEY = "qcog-mock-api-key"
MAX_RETRIES = 10
MAX_TIMEOUT_SECONDS = 86_400


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the emulator's behaviour.

    ``data_dir=None`` keeps the database in memory and files in a temporary folder (tests).
    Webhooks go to each run's ``local_webhook_url`` and to ``webhook_urls``, signed with
    ``webhook_secret`` (generated, then kept in the data dir, when not given).
    ``start_delay`` and ``retry_delay`` are simulated seconds a run waits, ``pending``, before its
    first attempt (provisioning) and between attempts; they are recorded but not counted in the
    run's runtime.
    """

    api_key: str = DEFAULT_API_KEY
    admin_username: str = "admin"
    admin_password: str = "admin"
    data_dir: Path | None = None
    clock: ClockMode = "auto"
    speed: float = 60.0
    start_time: float = parse_time(DEFAULT_START)
    epoch_seconds: float | None = None
    start_delay: float = 5.0
    retry_delay: float = 30.0
    max_retries: int = MAX_RETRIES
    max_upload_bytes: int = 512 * 1024 * 1024
    seed: int = 0
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    webhook_checkpoints: bool = False
    webhook_timeout: float = 3.0
    allow_remote_webhooks: bool = False

    @classmethod
    def from_environment(cls, **overrides: object) -> Settings:
        """Settings with the API key from ``QCOG_API_KEY`` when set, as a platform ``.env`` has."""
        values: dict[str, object] = {}
        if key := os.environ.get("QCOG_API_KEY", "").strip():
            values["api_key"] = key
        if secret := os.environ.get("QCOG_MOCK_WEBHOOK_SECRET", "").strip():
            values["webhook_secret"] = secret
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
