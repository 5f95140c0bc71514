"""/queues: RQ queues, workers and failed jobs; operators requeue, delete, pause and resume."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import NotFound
from app.infra.queue import ALL_QUEUES
from app.infra.queue_admin import LOST_AFTER_SECONDS
from app.services import dashboard, interventions
from app.web import web
from app.web.ops_forms import ConfirmForm

QUEUE_ACTIONS = {
    "pause": "Pause the queue (workers stop taking its jobs; jobs stay queued)",
    "resume": "Resume the queue",
    "requeue": "Requeue failed jobs",
    "delete": "Delete failed jobs",
}
FAILED_JOBS_SHOWN = 50  # per queue, newest first


@web.get("/queues")
@require_permission("dashboard:read")
def queue_list():
    admin = dashboard.queue_admin()
    try:
        overview = dashboard.queue_overview()
        failed = {name: admin.failed_jobs(name, FAILED_JOBS_SHOWN) for name in ALL_QUEUES}
        workers = admin.workers()
    except Exception:  # noqa: BLE001 - Redis down: say so instead of a 500
        overview, failed, workers = None, {}, []
    failed_total = {q["name"]: q["failed"] for q in overview["queues"]} if overview else {}
    return render_template(
        "queues/list.html", overview=overview, failed=failed, workers=workers,
        failed_total=failed_total, lost_after=LOST_AFTER_SECONDS,
    )


def _perform(name: str, action: str, job_id: str | None, reason: str) -> str:
    actor = request_actor("web")
    if action in ("pause", "resume"):
        done = "paused" if action == "pause" else "resumed"
        if not interventions.set_queue_paused(name, action == "pause", actor, reason):
            return f"Queue {name} was {done} already; nothing changed."
        return f"Queue {name} {done}."
    perform = interventions.requeue_failed if action == "requeue" else interventions.delete_failed
    count = perform(name, job_id, actor, reason)
    return f"{count} failed job(s) of {name} {action}d."


@web.route(
    "/queues/<name>/<any(pause, resume, requeue, delete):action>", methods=["GET", "POST"]
)
@require_permission("queues:operate")
def queue_action(name: str, action: str):
    """A confirmation page with a required reason; the POST does it."""
    if name not in ALL_QUEUES:
        abort(404, description="No such queue.")
    form = ConfirmForm(job_id=request.args.get("job_id", ""))
    if form.validate_on_submit():
        try:
            flash(_perform(name, action, form.job_id.data or None, form.reason.data), "info")
        except NotFound as exc:
            flash(f"No such {exc.what} (already handled?).", "error")
        return redirect(url_for("web.queue_list"))
    scope = f"job {form.job_id.data}" if form.job_id.data else (
        "all failed jobs" if action in ("requeue", "delete") else "")
    return render_template(
        "confirm.html", form=form, title=f"{QUEUE_ACTIONS[action]}: {name} {scope}".strip(),
        back=url_for("web.queue_list"), danger=action in ("delete", "pause"), refusal=None,
    ), 400 if request.method == "POST" else 200
