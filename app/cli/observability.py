"""`flask --app wsgi observability generate`, `profile-request` and `profile-saga`."""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from config import PROJECT_ROOT


@click.group("observability")
def observability_group() -> None:
    """Prometheus rules and the Grafana dashboard, generated from the SLO definitions."""


@observability_group.command("generate")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=PROJECT_ROOT / "deploy", show_default=True)
@click.option("--base-url", default="",
              help="Dashboard URL prefix for runbook links (default: relative /runbooks/<slug>).")
def generate_command(out_dir: Path, base_url: str) -> None:
    """Write the Prometheus rules file and the Grafana dashboard JSON."""
    from app.observability.rules import write_all

    for path in write_all(out_dir, base_url):
        click.echo(f"wrote {path}")


def _print_profile(profiler: cProfile.Profile, limit: int, sort: str) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(limit)
    click.echo(out.getvalue())


@click.command("profile-request")
@click.argument("path")
@click.option("--method", default="GET", show_default=True)
@click.option("--header", "headers", multiple=True, help='"Name: value"; repeatable.')
@click.option("--json-body", help="A JSON request body.")
@click.option("--limit", default=30, show_default=True, help="Functions to list.")
@click.option("--sort", default="cumulative", show_default=True)
@with_appcontext
def profile_request_command(path, method, headers, json_body, limit, sort) -> None:
    """Profile one request through the whole app (cProfile); authenticate with --header."""
    import json

    parsed = dict(h.split(":", 1) for h in headers)
    parsed = {k.strip(): v.strip() for k, v in parsed.items()}
    client = current_app.test_client()
    profiler = cProfile.Profile()
    profiler.enable()
    response = client.open(
        path, method=method.upper(), headers=parsed,
        json=json.loads(json_body) if json_body else None,
    )
    profiler.disable()
    click.echo(f"{method.upper()} {path} -> {response.status_code}")
    _print_profile(profiler, limit, sort)


@click.command("profile-saga")
@click.argument("order_id")
@click.option("--limit", default=30, show_default=True, help="Functions to list.")
@click.option("--sort", default="cumulative", show_default=True)
@with_appcontext
def profile_saga_command(order_id: str, limit: int, sort: str) -> None:
    """Drive one order's saga in this process under cProfile (as the worker would)."""
    from app.factory import worker_identity
    from app.observability.metrics import observe_saga_step
    from app.services.saga import SagaContext, run_saga

    ctx = SagaContext(
        payments=current_app.extensions["payment_provider"],
        shipping=current_app.extensions["shipping_provider"],
        worker=worker_identity(),
        on_step=observe_saga_step,
    )
    profiler = cProfile.Profile()
    profiler.enable()
    status = run_saga(order_id, ctx)
    profiler.disable()
    click.echo(f"saga of {order_id} -> {status}")
    _print_profile(profiler, limit, sort)
