"""`make run`'s launcher: the whole system from one command on embedded defaults, and Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from tests.servers import ROOT, free_port

pytestmark = pytest.mark.slow


def wait_until(predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except requests.RequestException:
            pass
        time.sleep(interval)
    return None


def _embedded_env(tmp_path, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORDERPROCESSING_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "ORDERPROCESSING_INSTANCE_PATH": str(tmp_path / "instance"),
            "PORT": str(port),
            "ORDERPROCESSING_WORKER_COUNT": "1",
        }
    )
    return env


# Ctrl-C in a terminal signals the whole foreground group; a supervisor (systemd, a CI runner)
# sends SIGTERM to the launcher alone; a closed terminal sends SIGHUP.
STOPS = {
    "ctrl_c": lambda pid: os.killpg(pid, signal.SIGINT),
    "sigterm_to_the_launcher": lambda pid: os.kill(pid, signal.SIGTERM),
    "terminal_closed": lambda pid: os.killpg(pid, signal.SIGHUP),
}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_launcher_runs_everything_embedded_and_a_stop_signal_stops_it_all(tmp_path, stop):
    port = free_port()
    env = _embedded_env(tmp_path, port)
    log = open(tmp_path / "launch.log", "wb")
    launcher = subprocess.Popen(
        [sys.executable, "scripts/launch.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: requests.get(base + "/healthz", timeout=2).ok, 120), (
            tmp_path / "launch.log"
        ).read_text()[-3000:]
        assert requests.get(base + "/login", timeout=5).status_code == 200
        output = (tmp_path / "launch.log").read_text()
        assert f"http://127.0.0.1:{port}/" in output
        assert "admin / operator / viewer" in output
        # Embedded defaults: SQLite and a Redis socket under the instance folder.
        assert (tmp_path / "instance" / "orders.db").exists()
        assert (tmp_path / "instance" / "redis.sock").exists()

        # The seeded merchant user places an order; the started worker completes it.
        token = requests.post(
            base + "/api/v1/auth/token",
            timeout=10,
            json={"username": "merchant1", "password": "demo-password-123"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        order = requests.post(
            base + "/api/v1/orders",
            headers=headers,
            timeout=10,
            json={
                "items": [{"sku": "BEAN-ETH", "quantity": 1}],
                "customer": {"email": "ana@example.com", "name": "Ana"},
                "shipping_address": {
                    "line1": "1 Jalan Ampang",
                    "city": "Kuala Lumpur",
                    "postal_code": "50450",
                    "country": "MY",
                },
                "payment": {"token": "tok_visa"},
            },
        ).json()
        final = wait_until(
            lambda: (
                requests.get(
                    f"{base}/api/v1/orders/{order['id']}", headers=headers, timeout=5
                ).json()["status"]
                in ("completed", "failed")
                and requests.get(
                    f"{base}/api/v1/orders/{order['id']}", headers=headers, timeout=5
                ).json()
            ),
            60,
        )
        assert final and final["status"] == "completed"

        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 5  # redis, honcho, gunicorn master + workers, worker, scheduler

        if stop == "ctrl_c":
            # A second `make run` from the same instance folder is refused, and leaves the
            # running one its Redis (it used to take the socket over and delete it on exit).
            second = subprocess.run(
                [sys.executable, "scripts/launch.py"], cwd=ROOT,
                env=_embedded_env(tmp_path, free_port()), capture_output=True, text=True,
                timeout=60, check=False,
            )
            assert second.returncode != 0
            assert f"make run is already running from {tmp_path / 'instance'}" in second.stderr
            assert str(launcher.pid) in second.stderr
            ready = requests.get(base + "/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
    finally:
        STOPS[stop](launcher.pid)
        code = launcher.wait(timeout=60)
        log.close()
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"still running after {stop}: {[p.pid for p in alive]}"
    assert code == 0
    # Redis is stopped last: the scheduler could still give its lease back on the way out.
    assert "could not release its lease" not in (tmp_path / "launch.log").read_text()


def test_launcher_exits_non_zero_when_the_web_port_is_taken(tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))  # noqa: S104 - the address gunicorn binds by default
    taken.listen()
    port = taken.getsockname()[1]
    log = open(tmp_path / "launch.log", "wb")
    try:
        launcher = subprocess.Popen(
            [sys.executable, "scripts/launch.py"], cwd=ROOT, env=_embedded_env(tmp_path, port),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        code = launcher.wait(timeout=180)
    finally:
        taken.close()
        log.close()
    output = (tmp_path / "launch.log").read_text()
    assert code != 0, output[-2000:]
    assert "stopped with an error" in output
