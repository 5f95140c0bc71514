"""Real processes on loopback for tests where the process model matters.

- `GunicornServer`: the production `web` command (gunicorn -c gunicorn.conf.py wsgi:app) with N
  workers, so rate limits, metrics and TLS are tested across processes, not in the test client.
- `WorkerProcess`: the production `worker` command (python -m worker), killable with SIGKILL.
- `SchedulerProcess`: python -m worker.scheduler.

Each takes the settings as ORDERPROCESSING_* environment variables, like a deployment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: dict, extra: dict | None = None) -> dict[str, str]:
    """The process environment for these app settings (as a deployment would set them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPROCESSING_")}
    for name, value in settings.items():
        env[f"ORDERPROCESSING_{name}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


class _Process:
    process: subprocess.Popen

    def _start(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a gunicorn master and its workers, a worker)."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class GunicornServer(_Process):
    def __init__(self, settings: dict, log_dir: Path, workers: int = 2, extra_env=None,
                 scheme: str = "http", wait_path: str = "/healthz", verify=False, cert=None):
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        env = settings_env(settings, {
            "WEB_CONCURRENCY": str(workers), "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            **(extra_env or {}),
        })
        self._start([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env,
                    log_dir / f"gunicorn-{self.port}.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("gunicorn exited:\n" + self.log_text()[-3000:])
            try:
                requests.get(self.url + wait_path, timeout=1, verify=verify, cert=cert)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not answer:\n" + self.log_text()[-3000:])


class WorkerProcess(_Process):
    def __init__(self, settings: dict, log_dir: Path, name: str = "w", extra_env=None,
                 args: list[str] | None = None):
        env = settings_env(settings, extra_env)
        self._start([sys.executable, "-m", "worker", "--name", name, *(args or [])], env,
                    log_dir / f"worker-{name}.log")


class SchedulerProcess(_Process):
    def __init__(self, settings: dict, log_dir: Path, name: str = "s", extra_env=None):
        env = settings_env(settings, extra_env)
        self._start([sys.executable, "-m", "worker.scheduler"], env,
                    log_dir / f"scheduler-{name}.log")


def settings_of(app) -> dict:
    """The overrides an app was built with, to hand to a real process."""
    from tests.conftest import TEST_SECRETS

    keys = ("ENV", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "LOG_LEVEL", "LOG_FORMAT",
            "QUEUE_PREFIX", "SCHEDULER_INTERVAL_SECONDS", "SAGA_STUCK_AFTER_SECONDS",
            "RATELIMIT_API", "RATELIMIT_AUTH", "RATELIMIT_ENABLED")
    settings = {k: app.config[k] for k in keys}
    settings.update(TEST_SECRETS)
    return settings
