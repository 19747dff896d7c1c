"""Server settings: one frozen object built by the CLI or a test, passed to ``create_app``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qcog_mock.mockserver.clock import DEFAULT_START, ClockMode, parse_time

DEFAULT_API_KEY = "qcog-mock-api-key"
DEFAULT_PORT = 8001  # serve's; the client's DEV and STAGING base URLs name it too
DEFAULT_ADMIN = ("admin", "admin")
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
    admin_username: str = DEFAULT_ADMIN[0]
    admin_password: str = DEFAULT_ADMIN[1]
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
    # Folders whose files a dataset or a batch inference may name by local path (none: uploads
    # only). Resolved, symlinks included; anything outside is refused.
    dataset_roots: tuple[Path, ...] = ()
    # Where s3://bucket/key is read from, as DIR/bucket/key (none: S3 datasets are stored as
    # references, and a run on one fails at once).
    s3_root: Path | None = None
    # Names the server answers to in the Host header, beside loopback names and IP literals
    # (a DNS-rebinding page reaches a loopback server under its own name: refused).
    allowed_hosts: tuple[str, ...] = ()
    # Listening beyond loopback without --allow-default-credentials: the well-known key is
    # revoked if a data dir kept it.
    exposed: bool = False
    # Any JSON body; the largest are sync inferences' CSV text (10,000 guide rows: 8.4 MB).
    max_json_bytes: int = 16 * 1024 * 1024
    max_blocking_control_calls: int = 4
    # Attempts compute in worker processes: how many at once (default: the cores left after one
    # for the server), with how many torch threads each, and for how long one epoch may take
    # (wall seconds) before the worker is stopped and the attempt crashes.
    workers: int = max(1, (os.cpu_count() or 2) - 1)
    worker_threads: int = 1
    worker_wall_seconds: float = 600.0
    # Checkpoints a run keeps: its latest this many, plus its best (smallest loss) and every
    # deployed one. A 10,000-epoch run of a large model would otherwise fill the disk.
    keep_checkpoints: int = 100
    executor: str = "local"  # or dask://HOST:PORT
    # Where a new emulator starts (a data dir that holds a state goes on from it): a seed file
    # (``seeding.py``) or a state archive (``state.py``); neither: the defaults.
    seed_file: Path | None = None
    state_file: Path | None = None

    def __post_init__(self) -> None:
        if self.seed_file is not None and self.state_file is not None:
            raise ValueError("start from a seed file or from a state archive, not both")

    @property
    def default_credentials(self) -> list[str]:
        """Which of the well-known defaults are in use."""
        found = []
        if self.api_key == DEFAULT_API_KEY:
            found.append(f"the API key '{DEFAULT_API_KEY}'")
        if (self.admin_username, self.admin_password) == DEFAULT_ADMIN:
            found.append("the admin's basic credentials admin/admin")
        return found

    @classmethod
    def from_environment(cls, **overrides: object) -> Settings:
        """Settings with the API key from ``QCOG_API_KEY`` when set, as a platform ``.env`` has."""
        values: dict[str, object] = {}
        if key := os.environ.get("QCOG_API_KEY", "").strip():
            values["api_key"] = key
        if secret := os.environ.get("QCOG_MOCK_WEBHOOK_SECRET", "").strip():
            values["webhook_secret"] = secret
        if username := os.environ.get("QCOG_MOCK_ADMIN_USERNAME", "").strip():
            values["admin_username"] = username
        if password := os.environ.get("QCOG_MOCK_ADMIN_PASSWORD", ""):
            values["admin_password"] = password
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
