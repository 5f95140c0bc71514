"""/postmortems: blameless postmortems on the Google SRE template, with owned action items."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import NotFound, ValidationFailed
from app.services import postmortems
from app.web import web
from app.web.forms import flash_form_problems
from app.web.knowledge_forms import (
    ActionItemForm,
    ActionStateForm,
    PostmortemForm,
    form_page,
    save_and_redirect,
    show_errors,
)


def _load(postmortem_id: str):
    try:
        return postmortems.get_postmortem(postmortem_id)
    except NotFound:
        abort(404, "No such postmortem.")


def _input(form: PostmortemForm) -> postmortems.PostmortemInput:
    texts = {name: getattr(form, name).data or "" for name in postmortems.SECTIONS}
    return postmortems.PostmortemInput(
        title=form.title.data or "", incident_date=form.incident_date.data,
        status=form.status.data, **texts,
    )


def _page(postmortem, item_form=None, status=200):
    return render_template(
        "postmortems/postmortem.html", pm=postmortem, sections=postmortems.SECTIONS,
        item_form=item_form or ActionItemForm(), states=postmortems.ACTION_STATES,
    ), status


@web.get("/postmortems")
@require_permission("dashboard:read")
def postmortems_list():
    return render_template("postmortems/list.html", rows=postmortems.list_postmortems())


@web.get("/postmortems/<postmortem_id>")
@require_permission("dashboard:read")
def postmortem_page(postmortem_id: str):
    return _page(_load(postmortem_id))


@web.route("/postmortems/new", methods=["GET", "POST"])
@web.route("/postmortems/<postmortem_id>/edit", methods=["GET", "POST"])
@require_permission("knowledge:write")
def postmortem_edit(postmortem_id: str | None = None):
    existing = _load(postmortem_id) if postmortem_id else None
    form = PostmortemForm(obj=existing)

    def save() -> str:
        data, actor = _input(form), request_actor("web")
        if existing is None:
            saved = postmortems.create_postmortem(data, actor)
        else:
            saved = postmortems.update_postmortem(existing.id, data, actor)
        return url_for("web.postmortem_page", postmortem_id=saved.id)

    return save_and_redirect(form, save, "Postmortem saved.") or form_page(
        "postmortems/form.html", form, pm=existing
    )


@web.post("/postmortems/<postmortem_id>/action-items")
@require_permission("knowledge:write")
def postmortem_add_item(postmortem_id: str):
    postmortem = _load(postmortem_id)
    form = ActionItemForm()
    if form.validate_on_submit():
        data = postmortems.ActionItemInput(description=form.description.data,
                                           owner=form.owner.data, kind=form.kind.data,
                                           due_date=form.due_date.data)
        try:
            postmortems.add_action_item(postmortem.id, data, request_actor("web"))
        except ValidationFailed as error:
            show_errors(form, error)
        else:
            flash("Action item added.", "info")
            return redirect(url_for("web.postmortem_page", postmortem_id=postmortem.id))
    return _page(postmortem, item_form=form, status=400)


@web.post("/postmortems/<postmortem_id>/action-items/<item_id>/state")
@require_permission("knowledge:write")
def postmortem_item_state(postmortem_id: str, item_id: str):
    form = ActionStateForm()
    if not form.validate_on_submit():
        flash_form_problems(form, "Action item not changed")
        return _page(_load(postmortem_id), status=400)
    try:
        item = postmortems.set_action_item_state(postmortem_id, item_id, form.state.data,
                                                 form.reason.data or "", request_actor("web"))
    except NotFound:
        abort(404, "No such action item.")
    flash(f"Action item is now {item.state}.", "info")
    return redirect(url_for("web.postmortem_page", postmortem_id=postmortem_id) + "#actions")
