"""schemathesis against a live gunicorn on loopback: no server errors, no schema violations.

Bounded in time (`--max-time` per run) so it stays a few minutes in `make test`.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.helpers import admin_headers, create_product, merchant_with_key
from tests.servers import GunicornServer, settings_of

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# A crash of the tool itself, not a finding: CPython 3.11's ast.parse (gh-106905) failing inside
# hypothesis while it describes a filter lambda. It follows the generated data, so a run that hit
# it is repeated with the next seed (twice at most); a run that found a real problem is never
# repeated, and a last run whose only trouble is that crash counts as clean (every other check of
# it passed; the crash is reported as a warning).
TOOL_CRASH = "SystemError: AST constructor recursion depth mismatch"
SEED = 20261127


def _only_the_tool_crashed(run: subprocess.CompletedProcess) -> bool:
    return TOOL_CRASH in run.stdout + run.stderr and "Failures:" not in run.stdout


def _run(server, header: str, report: Path, max_time: int) -> subprocess.CompletedProcess:
    run = _run_once(server, header, report, max_time, SEED)
    for retry in range(1, 3):
        if run.returncode == 0 or not _only_the_tool_crashed(run):
            break
        run = _run_once(server, header, report, max_time, SEED + retry)
    return run


def _run_once(
    server, header: str, report: Path, max_time: int, seed: int
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(SCHEMATHESIS), "run", server.url + "/api/v1/openapi.json",
            "--url", server.url, "--checks", CHECKS, "--header", header,
            "--max-examples", "25", "--max-time", str(max_time), "--workers", "2",
            "--seed", str(seed), "--no-color", "--request-timeout", "10",
            "--generation-database", "none", "--phases", "examples,coverage,fuzzing",
            "--report", "junit", "--report-junit-path", str(report),
        ],
        capture_output=True, text=True, timeout=max_time + 240,
    )


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_errors_and_no_schema_violations(
    make_app, postgresql_database_url, tmp_path
):
    app = make_app(postgresql_database_url, RATELIMIT_API="100000 per minute",
                   RATELIMIT_AUTH="100000 per minute")
    client = app.test_client()
    admin = admin_headers(app, client)
    _, key = merchant_with_key(client, admin)
    create_product(client, key, stock=10**6)
    with GunicornServer(settings_of(app), tmp_path, workers=2) as server:
        runs = {
            "merchant": _run(server, f"X-API-Key: {key['X-API-Key']}",
                             tmp_path / "merchant.xml", 75),
            "admin": _run(server, f"Authorization: {admin['Authorization']}",
                          tmp_path / "admin.xml", 45),
        }
        server_log = server.log_text()
    for name, run in runs.items():
        if run.returncode != 0 and _only_the_tool_crashed(run):
            warnings.warn(f"schemathesis ({name}) crashed in CPython's ast (gh-106905) on every "
                          "seed tried; no check failed", stacklevel=1)
            continue
        assert run.returncode == 0, (
            f"schemathesis ({name}) found problems:\n{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
            f"\nserver log:\n{server_log[-4000:]}"
        )
