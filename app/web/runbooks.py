"""/runbooks: ordered steps for known failures; operators start a run and tick steps as they go."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.services import runbooks
from app.web import web
from app.web.forms import flash_form_problems
from app.web.knowledge_forms import (
    FinishRunForm,
    RunbookForm,
    StartRunForm,
    TickStepForm,
    form_page,
    save_and_redirect,
)


def _or_404(load, *args):
    try:
        return load(*args)
    except NotFound as missing:
        abort(404, f"No such {missing.what}.")


@web.get("/runbooks")
@require_permission("dashboard:read")
def runbooks_list():
    return render_template("runbooks/list.html", rows=runbooks.list_runbooks())


@web.get("/runbooks/<slug>")
@require_permission("dashboard:read")
def runbook_page(slug: str):
    runbook = _or_404(runbooks.get_runbook, slug)
    return render_template("runbooks/runbook.html", runbook=runbook, form=StartRunForm(),
                           runs=runbooks.recent_runs(runbook))


@web.route("/runbooks/new", methods=["GET", "POST"], endpoint="runbook_new")
@web.route("/runbooks/<slug>/edit", methods=["GET", "POST"])
@require_permission("knowledge:write")
def runbook_edit(slug: str | None = None):
    runbook = _or_404(runbooks.get_runbook, slug) if slug else None
    if request.method == "POST" or runbook is None:
        # A POST is read from what was posted, nothing else: built with obj=runbook, a field left
        # out would take the stored attribute instead (for `steps`, the list of step rows) and a
        # save would go through with it; here it is missing and the form says so.
        form = RunbookForm()
    else:
        form = RunbookForm(data={"title": runbook.title, "summary": runbook.summary,
                                 "steps": runbooks.steps_text(runbook)})

    def save() -> str:
        values, actor = (form.title.data, form.summary.data, form.steps.data), request_actor("web")
        if runbook is None:
            saved = runbooks.create_runbook(form.slug.data, *values, actor)
        else:
            saved = runbooks.update_runbook(runbook.slug, *values, actor)
        return url_for("web.runbook_page", slug=saved.slug)

    return save_and_redirect(form, save, "Runbook saved.") or form_page(
        "runbooks/form.html", form, runbook=runbook
    )


@web.post("/runbooks/<slug>/runs")
@require_permission("knowledge:write")
def runbook_start_run(slug: str):
    runbook = _or_404(runbooks.get_runbook, slug)
    form = StartRunForm()
    if form.validate_on_submit():
        try:
            run = runbooks.start_run(slug, form.reason.data, request_actor("web"))
        except ValidationFailed as error:
            form.reason.errors = [e.message for e in error.errors]
        else:
            return redirect(url_for("web.runbook_run", slug=slug, run_id=run.id))
    return render_template("runbooks/runbook.html", runbook=runbook, form=form,
                           runs=runbooks.recent_runs(runbook)), 400


def _run_page(slug: str, run_id: str, finish_form: FinishRunForm | None = None,
              status: int = 200):
    runbook, run = _or_404(runbooks.get_run, slug, run_id)
    page = render_template("runbooks/run.html", runbook=runbook, run=run,
                           ticked={t.step_position: t for t in run.ticks},
                           tick_form=TickStepForm(), finish_form=finish_form or FinishRunForm())
    return page, status


@web.get("/runbooks/<slug>/runs/<run_id>")
@require_permission("dashboard:read")
def runbook_run(slug: str, run_id: str):
    return _run_page(slug, run_id)


@web.post("/runbooks/<slug>/runs/<run_id>/steps/<int:position>")
@require_permission("knowledge:write")
def runbook_tick(slug: str, run_id: str, position: int):
    form = TickStepForm()
    if not form.validate_on_submit():
        flash_form_problems(form, f"Step {position} not marked done")
        return _run_page(slug, run_id, status=400)
    try:
        tick, ticked = runbooks.tick_step(
            slug, run_id, position, form.note.data or "", request_actor("web")
        )
        if not ticked:  # another tab or a colleague was first; their tick (and note) stands
            flash(f"Step {position} was already marked done by {tick.done_by}; nothing changed.",
                  "info")
    except NotFound as missing:
        abort(404, f"No such {missing.what}.")
    except (Conflict, ValidationFailed) as refused:
        flash(str(refused), "error")
    return redirect(url_for("web.runbook_run", slug=slug, run_id=run_id) + f"#step-{position}")


@web.post("/runbooks/<slug>/runs/<run_id>/finish")
@require_permission("knowledge:write")
def runbook_finish(slug: str, run_id: str):
    form = FinishRunForm()
    if not form.validate_on_submit():
        flash_form_problems(form, "Run not finished")
        return _run_page(slug, run_id, finish_form=form, status=400)
    try:
        run = runbooks.finish_run(slug, run_id, form.outcome.data, form.notes.data or "",
                                  request_actor("web"))
    except NotFound as missing:
        abort(404, f"No such {missing.what}.")
    except (Conflict, ValidationFailed) as refused:
        flash(str(refused), "error")
    else:
        flash(f"Run finished: {run.outcome}.", "info")
    return redirect(url_for("web.runbook_run", slug=slug, run_id=run_id))
