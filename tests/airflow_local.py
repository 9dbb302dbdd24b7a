"""Airflow as a deployment runs the DAGs, on one machine, for the tests, the soak and the bench:
an API server of our own on loopback, through whose execution API the task processes reach
Airflow, and `airflow dags test --use-executor`, whose LocalExecutor runs mapped tasks at once,
each in a task process of its own that may not reach the metadata database (plain `dags test`
runs the tasks one after another in its own process, which may)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pipeline.settings import PROJECT_ROOT


def airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


@contextmanager
def execution_api(env: dict[str, str], log: Path) -> Iterator[dict[str, str]]:
    """An Airflow API server on a free loopback port (its output in `log`), stopped
    afterwards; `env` with what points task processes at it, a signing secret of its own and
    the LocalExecutor."""
    port = _free_port()
    env = {**env, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
           "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32)}
    with log.open("w") as out:
        server = subprocess.Popen([airflow_bin(), "api-server", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "1"], env=env, cwd=PROJECT_ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/api/v2/monitor/health", server, log)
        yield env
    finally:
        stop_group(server)


@dataclass(frozen=True)
class DagTest:
    """What one `airflow dags test --use-executor` did."""

    output: str
    exit_code: int | None  # None: it hung after its DAG run had finished, and was stopped
    began: datetime  # when the command was started
    seconds: float  # from its start until it exited, or its DAG run finished when it hung
    finished: str  # Airflow's "DagRun Finished: ..." line, or ""

    @property
    def succeeded(self) -> bool:
        return "state=success" in self.finished and self.exit_code in (0, None)


def dags_test(env: dict[str, str], dag_id: str, log: Path, timeout: float = 900.0,
              linger: float = 60.0) -> DagTest:
    """Run `airflow dags test --use-executor dag_id` with `env` (from `execution_api`), its
    output in `log`. The command can hang after its DAG run has finished, shutting the
    LocalExecutor down (a worker that never joins, apache/airflow#45683): `linger` seconds
    after the run finished it is stopped, and the run's logged outcome stands."""
    started, began = time.monotonic(), datetime.now(UTC)
    with log.open("w") as out:
        process = subprocess.Popen([airflow_bin(), "dags", "test", "--use-executor", dag_id],
                                   env=env, cwd=PROJECT_ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    finished_at = None
    while process.poll() is None and time.monotonic() - started < timeout:
        if finished_at is None and _run_finished(log):
            finished_at = time.monotonic()
        if finished_at is not None and time.monotonic() - finished_at > linger:
            break
        time.sleep(0.2)
    ended = time.monotonic()
    hung = process.poll() is None and finished_at is not None
    stop_group(process)
    return DagTest(output=log.read_text(errors="replace"),
                   exit_code=None if hung else process.returncode, began=began,
                   seconds=(finished_at if hung and finished_at else ended) - started,
                   finished=_run_finished(log))


def _run_finished(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if "DagRun Finished:" in line:
            return line[line.index("DagRun Finished:"):][:300]
    return ""


def stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop a process started in a session of its own, and whatever it started."""
    if process.poll() is not None and not _group_alive(process.pid):
        return
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    if _group_alive(process.pid):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Return once `url` answers 200; RuntimeError if the server exits or takes 3 minutes."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Airflow API server did not come up at {url} (exit {server.poll()}): "
                       f"{log.read_text(errors='replace')[-2000:]}")
