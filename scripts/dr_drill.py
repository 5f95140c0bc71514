"""`make dr-drill`: a disaster-recovery drill anyone can run, measuring RTO and RPO.

1. seed a fresh PostgreSQL database and start the system (gunicorn, workers, scheduler);
2. put it under load (merchants placing orders from several threads);
3. take a backup (`flask backup`) while the load runs, and keep the load going a little longer;
4. destroy the database (DROP DATABASE, processes gone: the machine is lost);
5. restore into a fresh database (`flask restore`, which verifies counts, checksums and
   check-integrity), start the system on it and gate it with `flask smoke-test`;
6. print the measured recovery time (RTO: destruction until the smoke test passed) and the data
   lost (RPO: orders accepted after the backup's snapshot, and that time window).

Needs PostgreSQL and Redis like `make test` (DR_POSTGRES_URL / DR_REDIS_URL override them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The deployment's processes on one database: gunicorn, RQ workers and the scheduler."""

    def __init__(self, env: dict[str, str], logs: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "2"}
        commands = [[str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                    [sys.executable, "-m", "worker.scheduler"]]
        commands += [[sys.executable, "-m", "worker", "--name", f"drill-{uuid.uuid4().hex[:6]}"]
                     for _ in range(workers)]
        self.processes = []
        for n, argv in enumerate(commands):
            log = open(logs / f"process-{self.port}-{n}.log", "ab")  # noqa: SIM115 - kept open
            self.processes.append(subprocess.Popen(  # noqa: S603 - our own commands
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit("the stack did not become ready; see the logs in " + str(logs))

    def kill(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def flask(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own CLI
        [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env, text=True,
        capture_output=True, check=False)


def orders_in(url: str) -> dict[str, str]:
    """Every order id with its status."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT id, status FROM orders")).all())
    finally:
        engine.dispose()


def prepare(env: dict[str, str]) -> dict[str, str]:
    """Schema, demo data, and a load merchant with its API key."""
    for args in (["db", "upgrade"], ["seed-demo"]):
        result = flask(args, env)
        if result.returncode != 0:
            raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    os.environ.update(env)
    from app.factory import create_app
    from app.services import accounts, catalog

    app = create_app()
    with app.app_context():
        merchant = accounts.create_merchant("DR drill load")
        catalog.create_product(merchant.id, sku="DR-1", name="Drill item", price=500,
                               currency="MYR", stock=1_000_000)
        _key, plain = accounts.create_api_key(merchant.id, "dr-drill")
        from app.extensions import db

        db.engine.dispose()
    return {"X-API-Key": plain}


def load(url: str, headers: dict[str, str], stop: threading.Event, accepted: list) -> None:
    """Place orders until told to stop; remember each accepted order and when."""
    session = requests.Session()
    n = 0
    while not stop.is_set():
        n += 1
        token = "tok_chargeDeclined" if n % 10 == 0 else "tok_visa"
        body = {"items": [{"sku": "DR-1", "quantity": 1}],
                "customer": {"email": f"dr{n}@example.com", "name": "Drill"},
                "shipping_address": {"line1": "1 Drill St", "city": "Kuala Lumpur",
                                     "postal_code": "50450", "country": "MY"},
                "payment": {"token": token}}
        try:
            response = session.post(url + "/api/v1/orders", json=body, headers=headers, timeout=10)
        except requests.RequestException:
            continue
        if response.status_code == 202:
            accepted.append((time.time(), response.json()["id"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make dr-drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load-seconds", type=float, default=6.0,
                        help="load before the backup (the same again after it)")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    admin_url = os.environ.get("DR_POSTGRES_URL",
                               "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("DR_REDIS_URL", "redis://127.0.0.1:6379/15")
    work = Path(tempfile.mkdtemp(prefix="dr-drill-"))
    run = uuid.uuid4().hex[:6]
    source_db, restored_db = f"dr_source_{run}", f"dr_restored_{run}"
    base = admin_url.rsplit("/", 1)[0]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{source_db}"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPROCESSING_")}
    env.update({
        "PYTHONPATH": str(ROOT), "ORDERPROCESSING_ENV": "development",
        "ORDERPROCESSING_INSTANCE_PATH": str(work / "instance"),
        "ORDERPROCESSING_DATABASE_URL": f"{base}/{source_db}",
        "ORDERPROCESSING_REDIS_URL": redis_url, "ORDERPROCESSING_QUEUE_PREFIX": f"dr{run}_",
        "ORDERPROCESSING_LOG_LEVEL": "WARNING", "ORDERPROCESSING_SCHEDULER_INTERVAL_SECONDS": "1",
        "ORDERPROCESSING_SAGA_STUCK_AFTER_SECONDS": "5", "ORDERPROCESSING_RATELIMIT_ENABLED": "0",
        **{f"ORDERPROCESSING_{name}": secrets.token_urlsafe(48)
           for name in ("SECRET_KEY", "JWT_SIGNING_KEY", "WEBHOOK_MASTER_KEY")},
    })
    report: dict[str, object] = {}
    stack = None
    try:
        say(f"1. seeding {source_db}")
        headers = prepare(env)
        stack = Stack(env, work)
        say(f"2. load: {args.threads} threads placing orders at {stack.url}")
        stop, accepted = threading.Event(), []
        threads = [threading.Thread(target=load, args=(stack.url, headers, stop, accepted))
                   for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        time.sleep(args.load_seconds)
        say("3. backup under load (flask backup)")
        backup_dir = work / "backup"
        result = flask(["backup", str(backup_dir)], env)
        if result.returncode != 0:
            raise SystemExit("backup failed:\n" + result.stderr[-2000:])
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        snapshot_at = dt.datetime.fromisoformat(manifest["taken_at"]).timestamp()
        say(f"   {result.stdout.strip()} in {manifest['seconds']:.2f}s")
        time.sleep(args.load_seconds)
        stop.set()
        for thread in threads:
            thread.join()
        before_loss = orders_in(env["ORDERPROCESSING_DATABASE_URL"])
        say("4. disaster: every process killed, the database dropped")
        stack.kill()
        stack = None
        destroyed_at = time.time()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{source_db}" WITH (FORCE)'))

        say(f"5. restore into a fresh database {restored_db} (flask restore)")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{restored_db}"'))
        env["ORDERPROCESSING_DATABASE_URL"] = f"{base}/{restored_db}"
        restore_started = time.time()
        result = flask(["restore", str(backup_dir)], env)
        say("   " + result.stdout.strip())
        if result.returncode != 0:
            raise SystemExit("restore failed verification:\n" + result.stderr[-3000:])
        restore_seconds = time.time() - restore_started
        stack = Stack(env, work)
        result = flask(["smoke-test", stack.url, "--timeout", "60"], env)
        if result.returncode != 0:
            raise SystemExit("smoke test failed after restore:\n" + result.stdout + result.stderr)
        recovered_at = time.time()
        say("   " + result.stdout.strip().splitlines()[-1])

        restored = orders_in(env["ORDERPROCESSING_DATABASE_URL"])
        lost = sorted(set(before_loss) - set(restored))
        accepted_after_snapshot = [oid for at, oid in accepted if at > snapshot_at]
        deadline = time.monotonic() + 60  # in-flight sagas of the snapshot are finished again
        while time.monotonic() < deadline:
            unfinished = [o for o, s in orders_in(env["ORDERPROCESSING_DATABASE_URL"]).items()
                          if s in ("pending", "processing")]
            if not unfinished:
                break
            time.sleep(1)
        integrity = flask(["check-integrity"], env)
        report = {
            "orders accepted during the drill": len(accepted),
            "orders in the database when it was destroyed": len(before_loss),
            "orders in the backup / restored": len(restored) - 1,  # minus the smoke order
            "orders lost (accepted after the snapshot)": len(lost),
            "lost orders accepted after the snapshot (by the clients' log)": sum(
                1 for oid in lost if oid in set(accepted_after_snapshot)),
            "restored orders left unfinished 60 s later": len(unfinished),
            "check-integrity after recovery": "ok" if integrity.returncode == 0
            else integrity.stdout.strip()[-300:],
            "backup duration (s)": manifest["seconds"],
            "restore + verification (s)": round(restore_seconds, 2),
            "RPO: snapshot to disaster (s)": round(destroyed_at - snapshot_at, 2),
            "RTO: disaster to smoke test passed (s)": round(recovered_at - destroyed_at, 2),
        }
    finally:
        if stack is not None:
            stack.kill()
        with admin.connect() as connection:
            for name in (source_db, restored_db):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("\nDR drill result")
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"  {key.ljust(width)}  {value}")
    print(f"  (logs and the backup are in {work})")
    return 0 if report["check-integrity after recovery"] == "ok" and not report[
        "restored orders left unfinished 60 s later"] else 1


if __name__ == "__main__":
    sys.exit(main())
