"""``qcog-mock serve``: the emulator over HTTP, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.webhooks.signing import is_loopback

MIB = 1024 * 1024


def serve(args: argparse.Namespace) -> None:
    settings = Settings.from_environment(
        data_dir=args.data_dir,
        clock=args.clock,
        speed=args.speed,
        epoch_seconds=args.epoch_seconds,
        start_time=args.start_time,
        max_upload_bytes=int(args.max_upload_mb * MIB),
        webhook_urls=tuple(args.webhook_url),
        webhook_secret=args.webhook_secret,
        webhook_checkpoints=args.webhook_checkpoints or None,
        allow_remote_webhooks=args.allow_remote_webhooks or None,
        dataset_roots=tuple(args.dataset_root) or None,
        s3_root=args.s3_root,
        allowed_hosts=(args.host, *args.allowed_host),
        exposed=not is_loopback(args.host) and not args.allow_default_credentials,
        admin_username=args.admin_username,
        admin_password=args.admin_password,
        max_json_bytes=int(args.max_json_mb * MIB),
        workers=args.workers,
        executor=args.executor,
        worker_wall_seconds=args.worker_timeout,
        keep_checkpoints=args.keep_checkpoints,
        worker_threads=args.torch_threads,
        seed_file=args.seed,
        state_file=args.state,
    )
    check_exposure(args.host, settings, args.allow_default_credentials)
    check_port(args.host, args.port, "serve")
    say_seed_applies(args)
    # Process-wide settings belong to the process that serves. Training happens in workers;
    # what the server itself computes (inferences) uses the same number of threads. Said to
    # torch through its environment: the server imports torch only at its first inference,
    # and workers (the first starts now) inherit it.
    os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    if args.executor == "local":  # torch loads in a worker while the server itself starts
        from qcog_mock.mockserver.engine.executors import local_processes

        local_processes().warm()
    import uvicorn  # the server's own imports, while the worker starts

    from qcog_mock.mockserver.api.edge import http_protocol
    from qcog_mock.mockserver.app import create_app
    from qcog_mock.mockserver.dashboard.pages import login_url
    from qcog_mock.mockserver.platform import DataDirInUse, OtherStartingPoint
    from qcog_mock.mockserver.seeding import SeedError
    from qcog_mock.mockserver.state import StateError

    raise_open_files_limit()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings=settings)
    except (DataDirInUse, OtherStartingPoint, SeedError, StateError) as error:
        raise SystemExit(f"qcog-mock serve: {error}") from None
    backend = app.state.platform
    for key in backend.revoked_keys:
        print(
            f"qcog-mock serve: revoked the well-known API key '{key}' that {args.data_dir} kept "
            "from an earlier serve with the defaults: it never works beyond loopback.",
            file=sys.stderr,
            flush=True,
        )
    print(f"qcog-mock listening on http://{args.host}:{args.port}/api/v1", flush=True)
    print(
        f"  clock: {backend.clock.mode} at {isoformat(backend.clock.now())}  "
        f"data: {args.data_dir.resolve()}",
        flush=True,
    )
    if origin := backend.store.setting("origin"):
        print(f"  started from the {origin['kind']} {origin['path']}", flush=True)
    print(f"  API key: {settings.api_key}   (export QCOG_API_KEY={settings.api_key})", flush=True)
    print(f"  webhook secret: {backend.webhooks.secret}", flush=True)
    print(f"  docs: http://{args.host}:{args.port}/docs", flush=True)
    print(f"  dashboard: {login_url(app, f'http://{args.host}:{args.port}')}", flush=True)
    # uvicorn stops on SIGINT and SIGTERM (its handlers replace an inherited "ignore"); a
    # request still open then gets 2 s, and the lifespan's end closes the platform.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=2,
        http=http_protocol(),  # a connection has 10 s to send a request's head
    )


def say_seed_applies(args: argparse.Namespace) -> None:
    """A seed's runs that wait train before the server answers: said as it starts (a data dir
    that holds a state goes on from it instead). The file is checked as the platform opens, and
    a bad one is one line naming the fix."""
    if args.seed is not None and not (args.data_dir / "qcog-mock.sqlite3").exists():
        print(
            f"qcog-mock: starting from {args.seed}: it is checked, and the runs it waits for "
            "train, before the server answers",
            flush=True,
        )


def check_port(host: str, port: int, command: str) -> None:
    """Exit with one line naming the fix if ``host:port`` cannot be listened on: said before
    the banner and before the data dir is opened, not as uvicorn's bind error after them."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                fix = "another server holds it (a qcog-mock serve?): stop it, or choose --port"
            else:
                fix = f"{error.strerror or error}: choose another --host or --port"
            message = f"qcog-mock {command}: cannot listen on {host}:{port}: {fix}."
            raise SystemExit(message) from None


def raise_open_files_limit() -> None:
    """As many connections as the system lets this process hold: a client that opens many
    and sends nothing (slowloris) then meets the hard limit, not the usual soft 1,024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def check_exposure(host: str, settings: Settings, allow_defaults: bool) -> None:
    """Beyond loopback, say so loudly, and refuse the well-known credentials unless told."""
    if is_loopback(host):
        return
    print(
        f"WARNING: qcog-mock listens on {host}, beyond this machine: anyone who can reach it and "
        "holds a key can train, read and delete. Bind 127.0.0.1 unless you mean it.",
        file=sys.stderr,
        flush=True,
    )
    defaults = settings.default_credentials
    if defaults and not allow_defaults:
        raise SystemExit(
            f"qcog-mock serve: refusing to listen on {host} with {' and '.join(defaults)}; set "
            "QCOG_API_KEY and --admin-username/--admin-password (or QCOG_MOCK_ADMIN_USERNAME/"
            "QCOG_MOCK_ADMIN_PASSWORD), or pass --allow-default-credentials."
        )


def end_process() -> None:
    """End a server process once it has stopped cleanly: its platform is closed, its workers
    are gone and its files are written, so the interpreter's own teardown (about 1.3 s with
    torch loaded, most of a stop's time) has nothing left to do. Streams and logs are flushed
    first; ``main`` ends this way only for the commands that serve."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
