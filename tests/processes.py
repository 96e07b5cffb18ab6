"""Real hub processes for end-to-end tests: ``hub serve`` on a free port, against its own database."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests import conftest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubProcess:
    def __init__(self, env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port), *args],
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub exited early:\n{self.log.read_text()}")
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"hub not ready:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


@asynccontextmanager
async def live_hubs(
    count: int,
    extra_env: dict[str, str] | None = None,
    per_hub: list[dict[str, str]] | None = None,
    args: tuple[str, ...] = (),
    default_prefix: bool = False,
) -> AsyncIterator[tuple[list[HubProcess], dict[str, str]]]:
    """Start ``count`` hub processes sharing one fresh database (and Redis on the PostgreSQL run).

    ``extra_env`` goes to every process, ``per_hub[i]`` to process i only; ``args`` are extra
    ``hub serve`` arguments (``--workers 2``). ``default_prefix``: no HUB_REDIS_PREFIX, so the
    processes use the one derived from the database.
    """
    tmp = Path(tempfile.mkdtemp(prefix="hub-live-"))
    # Live tests send bursts through one key on purpose; rate limits have their own tests.
    no_limits = {f"HUB_RATE_LIMIT_{r}": "0" for r in ("PLATFORM", "BRAND", "STORE", "MEMBER", "ANONYMOUS")}
    env = {
        "HUB_SECRET_KEY": "live-test-secret",
        "HUB_SECRET_FILE": str(tmp / "secret"),
        **no_limits,
        **(extra_env or {}),
    }
    pg_url = None
    if conftest.BACKEND == "postgres":
        pg_url = await conftest._create_pg_database()
        env |= {
            "HUB_DATABASE_URL": pg_url + "?maxsize=10",
            "HUB_REDIS_URL": conftest.REDIS_URL,
        }
        if not default_prefix:
            env["HUB_REDIS_PREFIX"] = f"hublive-{os.getpid()}-{time.monotonic_ns()}:"
    else:
        env["HUB_DATABASE_URL"] = f"sqlite://{tmp}/live.sqlite3"
    cli = subprocess.run(
        [sys.executable, "-m", "hub.cli", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )
    # A fresh database: `hub migrate` names what it applied ("up to date" only when nothing was pending).
    assert b"applied" in cli.stdout or b"up to date" in cli.stdout, cli
    hubs = [
        HubProcess({**env, **(per_hub or [{}] * count)[i]}, tmp / f"hub-{i}.log", args) for i in range(count)
    ]
    try:
        await asyncio.gather(*(h.wait_ready() for h in hubs))
        yield hubs, env
    finally:
        for hub in hubs:
            hub.stop()
        if pg_url:
            await conftest._drop_pg_database(pg_url)
        shutil.rmtree(tmp, ignore_errors=True)


def create_platform_key(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "hub.cli", "keys", "create", "--role", "platform"],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


class WorkerProcess:
    """A ``hub worker`` process with the example job handlers (``tests/worker/run_worker.py``), or the
    handlers another ``module`` registers (``tests/grants/run_worker.py``)."""

    def __init__(self, env: dict[str, str], log: Path, module: str = "tests.worker.run_worker") -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **env},
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, like a crash or an OOM kill."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, as a deploy or a scale-down sends it; returns the exit code."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        self.kill()
        self._out.close()
