"""API throughput and p99 against PostgreSQL with 2 gunicorn workers, next to a bare Flask app.

Four runs at the same concurrency (default 32 connections), same gunicorn settings
(gunicorn.conf.py, 2 sync workers):
- POST /api/v1/orders (API key auth, rate limit, validation, pricing, saga steps, enqueue) vs
  POST /bare/rows (one raw INSERT);
- GET /api/v1/orders/{id} (auth, rate limit, version check, Redis cache) vs
  GET /bare/rows/{id} (one raw SELECT).
Goal: each API figure at least half its bare counterpart; p99 of order creation under 100 ms.

The four runs repeat in rounds (default 3 of 5 s each): this shared VM's speed drifts from one
minute to the next, so each round's ratios compare runs seconds apart, and the report gives every
round and the median round's ratio and creation p99.

Load comes from `wrk` when installed (apt-get install wrk: it leaves the CPU to the servers),
else (or with BENCH_LOAD_GENERATOR=threads) from Python threads with keep-alive connections.

    .venv/bin/python -m benchmarks --only bench_api [--api-seconds 5] [--api-rounds 3]
        [--api-connections 32] [--api-floor]

--api-floor adds two runs per round (benchmarks/floor_app.py): the bare insert plus the saga's
RQ enqueue, and that plus a rate-limit count - the floor any conforming creation stands on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from statistics import median

from sqlalchemy import create_engine, text

# The same database, secrets and order as the saga benchmark.
from benchmarks.bench_saga import ORDER, PG_ADMIN_URL, SECRETS
from benchmarks.cpu import CpuMeter, children_of, pids_named

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def add_arguments(parser) -> None:
    parser.add_argument("--api-seconds", type=int, default=5, help="duration of each run")
    parser.add_argument("--api-rounds", type=int, default=3, help="rounds of the four runs")
    parser.add_argument("--api-connections", type=int, default=32)
    parser.add_argument("--api-threads", type=int, default=None,
                        help="threads per gunicorn worker, both apps (default: gunicorn.conf.py's)")
    parser.add_argument("--api-floor", action="store_true",
                        help="also run benchmarks/floor_app.py: the bare insert plus an RQ "
                             "enqueue, then plus a rate-limit count (what every creation pays)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(target: str, env_extra: dict, log: Path,
              threads: int | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPROCESSING_")}
    env.update(env_extra)
    if threads is not None:
        env["ORDERPROCESSING_WEB_THREADS"] = str(threads)
    env.update({"PYTHONPATH": str(ROOT), "WEB_CONCURRENCY": "2",
                "GUNICORN_BIND": f"127.0.0.1:{port}"})
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", target], cwd=ROOT, env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + log.read_text()[-3000:]) from None
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


_WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def _load_wrk(url: str, method: str, body: str | None, headers: dict, seconds: int,
              connections: int, workdir: Path) -> dict:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = workdir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(_WRK_SCRIPT.format(method=method, body=json.dumps(body) if body else "nil",
                                         headers=lines))
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
         "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+)", out)
    if not match:
        raise RuntimeError("wrk gave no result:\n" + out)
    requests_, errors, p50, p99, duration_us = match.groups()
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(requests_),
        "requests_per_second": round(int(requests_) / (float(duration_us) / 1e6), 1),
        "p50_ms": round(int(p50) / 1000, 2),
        "p99_ms": round(int(p99) / 1000, 2),
        "errors": int(errors) + (int(non_2xx.group(1)) if non_2xx else 0),
        "load_generator": "wrk",
    }


def _load_threads(url: str, method: str, body: str | None, headers: dict, seconds: int,
                  connections: int, workdir: Path) -> dict:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, bad = [], 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                conn.request(method, parts.path, body, headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 300:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "errors": errors[0],
        "load_generator": "python-threads",
    }


def _prepare(database_url: str, instance: Path) -> dict:
    """Schema, a merchant with an API key and a product, one order and one bare row."""
    from flask_migrate import upgrade

    from app.extensions import db
    from app.factory import create_app

    settings = {
        "ENV": "testing", "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(instance), "LOG_LEVEL": "WARNING", "QUEUE_PREFIX": "benchapi:",
        "RATELIMIT_API": "10000000 per minute", **SECRETS,
    }
    app = create_app(settings)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    client = app.test_client()
    from app.services import accounts

    with app.app_context():
        merchant = accounts.create_merchant("Bench")
        _, key = accounts.create_api_key(merchant.id, "bench")
    headers = {"X-API-Key": key}
    client.post("/api/v1/products", headers=headers, json={
        "sku": "BENCH-1", "name": "Bench", "price": 100, "currency": "MYR", "stock": 10**9})
    order = client.post("/api/v1/orders", headers=headers, json=ORDER).get_json()
    with app.app_context():
        db.engine.dispose()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_bare (id serial PRIMARY KEY, payload text)"))
        bare_id = connection.execute(
            text("INSERT INTO bench_bare (payload) VALUES (:p) RETURNING id"),
            {"p": json.dumps(ORDER)},
        ).scalar_one()
    engine.dispose()
    app_env = {f"ORDERPROCESSING_{k}": str(v) for k, v in settings.items()}
    return {"app_env": app_env, "key": key, "order_id": order["id"], "bare_id": bare_id}


def run(args) -> dict:
    import redis

    seconds = getattr(args, "api_seconds", 5)
    connections = getattr(args, "api_connections", 32)
    use_wrk = shutil.which("wrk") and os.environ.get("BENCH_LOAD_GENERATOR") != "threads"
    load = _load_wrk if use_wrk else _load_threads
    name = f"op_bench_api_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    servers = []
    try:
        setup = _prepare(database_url, workdir / "instance")
        threads = getattr(args, "api_threads", None)
        api, api_port = _gunicorn("wsgi:app", setup["app_env"], workdir / "api.log", threads)
        servers.append(api)
        bare, bare_port = _gunicorn("benchmarks.bare_app:app", {"BARE_DATABASE_URL": database_url},
                                    workdir / "bare.log", threads)
        servers.append(bare)
        floor = None
        if getattr(args, "api_floor", False):
            floor, floor_port = _gunicorn(
                "benchmarks.floor_app:app",
                {"BARE_DATABASE_URL": database_url, "FLOOR_REDIS_URL": REDIS_URL},
                workdir / "floor.log", threads,
            )
            servers.append(floor)
        api_url, bare_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{bare_port}"
        json_headers = {"Content-Type": "application/json"}
        key_headers = {"X-API-Key": setup["key"]}
        body = json.dumps(ORDER)
        # Warm-up: every worker compiles its SQL and opens its pools before anything is timed.
        load(api_url + "/api/v1/orders", "POST", body, {**json_headers, **key_headers}, 2,
             connections, workdir)
        load(api_url + f"/api/v1/orders/{setup['order_id']}", "GET", None, key_headers, 2,
             connections, workdir)
        def measured(server: subprocess.Popen, *load_args) -> dict:
            """One load run, with the CPU each component spent per request (ms)."""
            meter = CpuMeter({
                "web_workers": lambda: children_of(server.pid),
                "postgres": lambda: pids_named("postgres"),
                "redis": lambda: pids_named("redis-server"),
            })
            result = load(*load_args)
            if CpuMeter.available():
                result["cpu_ms_per_request"] = meter.per_unit(result["requests"])
            return result

        runs = {
            "create_api": (api, api_url + "/api/v1/orders", "POST", body,
                           {**json_headers, **key_headers}),
            "create_bare": (bare, bare_url + "/bare/rows", "POST", body, json_headers),
            "read_api": (api, api_url + f"/api/v1/orders/{setup['order_id']}", "GET", None,
                         key_headers),
            "read_bare": (bare, bare_url + f"/bare/rows/{setup['bare_id']}", "GET", None, {}),
        }
        if floor is not None:
            floor_url = f"http://127.0.0.1:{floor_port}"
            for name, path in (("create_floor_enqueue", "/floor/enqueue"),
                               ("create_floor_limited", "/floor/limited")):
                load(floor_url + path, "POST", body, json_headers, 2, connections, workdir)
                runs[name] = (floor, floor_url + path, "POST", body, json_headers)
        rounds = [
            {
                name: measured(server, *load_args, seconds, connections, workdir)
                for name, (server, *load_args) in runs.items()
            }
            for _ in range(getattr(args, "api_rounds", 3))
        ]
    finally:
        for process in servers:
            _stop(process)
        redis.Redis.from_url(REDIS_URL).flushdb()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def ratio(result: dict, kind: str) -> float:
        return result[f"{kind}_api"]["requests_per_second"] / max(
            result[f"{kind}_bare"]["requests_per_second"], 0.1)

    floors = {}
    for name in ("create_floor_enqueue", "create_floor_limited"):
        if name in rounds[0]:
            floors[name] = sorted(
                round(r[name]["requests_per_second"] / max(r["create_bare"]["requests_per_second"],
                                                           0.1), 3)
                for r in rounds
            )
    create_ratios = sorted(ratio(r, "create") for r in rounds)
    read_ratios = sorted(ratio(r, "read") for r in rounds)
    create_ratio, read_ratio = median(create_ratios), median(read_ratios)
    create_p99 = median(r["create_api"]["p99_ms"] for r in rounds)
    return {
        "connections": connections,
        "seconds_per_run": seconds,
        "gunicorn": "2 sync workers (gunicorn.conf.py)",
        "rounds": rounds,
        "create_ratio": round(create_ratio, 3),  # the median round's
        "create_ratios": [round(r, 3) for r in create_ratios],
        "read_ratio": round(read_ratio, 3),
        "read_ratios": [round(r, 3) for r in read_ratios],
        "create_p99_ms": create_p99,  # the median round's
        **({"floor_ratios": floors} if floors else {}),
        "goal_met": {
            "create_ratio_at_least_half": create_ratio >= 0.5,
            "read_ratio_at_least_half": read_ratio >= 0.5,
            "create_p99_under_100ms": create_p99 < 100,
        },
    }
