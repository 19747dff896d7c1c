"""A slow webhook receiver delays only its own endpoint: the wall time of a small run beside
another run, whose webhooks go nowhere or to a receiver that trickles one byte every 0.5 s,
measured side by side.

    .venv/bin/python bench/webhook_isolation.py [--rounds 3]

Both runs train on the auto clock; the trickling run's deliveries each hold their lane for the
delivery deadline (3 s). Before deliveries left the simulation kernel, each held the clock, and
every run with it, for as long as the receiver trickled (150 s for a 2-epoch run in the audit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import threading
import time

import httpx

from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.guide import guide_hyperparameters
from qcog_mock.trainer.synthetic import synthetic_panel

KEY = "bench-key"


class Trickler:
    """Accepts connections and sends one byte of a status line every 0.5 s, never finishing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            for byte in b"HTTP/1.1 200 OK\r\n" * 100:
                if self.stop.wait(0.5):
                    return
                connection.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


async def run_time(trickler: Trickler | None) -> tuple[float, float]:
    """Wall seconds for a 2-epoch run to be seen completed, polled and through
    ``Story.wait``, beside a run whose webhooks go to ``trickler`` (or nowhere)."""
    platform = Platform(Settings(api_key=KEY, clock="auto"))
    try:
        transport = httpx.ASGITransport(app=create_app(platform))
        async with Story.connect("http://testserver/api", KEY, transport=transport) as story:
            await story.upload("data", synthetic_panel(dates=10, assets=100, seed=0))
            params = {"hyperparameters": guide_hyperparameters(epochs=2, seed=1)}
            url = trickler.url if trickler is not None else None
            await story.submit("noisy", "data", params, webhook_url=url)
            started = time.perf_counter()
            await story.submit("quiet", "data", params)
            # Polled as users poll (get_experiment_run), and through the harness's wait.
            while (await story.run("quiet"))["status"] != "completed":
                await asyncio.sleep(0.01)
            polled = time.perf_counter() - started
            await story.wait("quiet", timeout=600)
            return polled, time.perf_counter() - started
    finally:
        platform.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    await run_time(None)  # the pool's worker starts and imports torch once
    alone, beside = [], []
    trickler = Trickler()
    try:
        for _ in range(args.rounds):  # interleaved: the machine's load falls on both alike
            alone.append(await run_time(None))
            beside.append(await run_time(trickler))
    finally:
        trickler.close()
    print("A 2-epoch run of the guide's model on 1,000 rows, auto clock, fastest of", args.rounds)
    for index, how in enumerate(("polled with get_experiment_run", "through Story.wait")):
        quiet = min(t[index] for t in alone)
        noisy = min(t[index] for t in beside)
        print(f"  {how}:")
        print(f"    beside a run without webhooks         {quiet:6.2f} s")
        print(f"    beside a run whose receiver trickles  {noisy:6.2f} s   ({noisy / quiet:.2f}×)")


if __name__ == "__main__":
    asyncio.run(main())
