"""/admin/users and /admin/merchants: accounts, roles and merchant API keys (admins only)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.services import accounts
from app.web import web
from app.web.forms import flash_form_problems
from app.web.ops_forms import (
    ChangeRoleForm,
    CreateApiKeyForm,
    CreateMerchantForm,
    CreateUserForm,
    ReasonForm,
)


def _problem_text(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(f"{e.field} {e.message}" for e in exc.errors)
    if isinstance(exc, NotFound):
        return f"No such {exc.what}."
    return str(exc)


def _users_page(create: CreateUserForm | None = None, status: int = 200, posted=None):
    """The users page; `posted` = (user id, form) of a refused row form, shown with its input."""
    return render_template(
        "admin/users.html", users=accounts.list_users(), create=create or CreateUserForm(),
        posted=posted,
    ), status


@web.get("/admin/users")
@require_permission("admin:manage")
def admin_users():
    return _users_page()


@web.post("/admin/users")
@require_permission("admin:manage")
def admin_create_user():
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(
                form.username.data, form.password.data, form.role.data,
                actor=request_actor("web"),
            )
        except (ValidationFailed, Conflict) as exc:
            flash(_problem_text(exc), "error")
        else:
            flash(f"User {user.username} created as {user.role}.", "info")
            return redirect(url_for("web.admin_users"))
    else:
        flash_form_problems(form, "User not created")
    return _users_page(form, 400)


@web.post("/admin/users/<user_id>/<any(role, disable, enable):action>")
@require_permission("admin:manage")
def admin_user_action(user_id: str, action: str):
    form = ChangeRoleForm() if action == "role" else ReasonForm()
    if not form.validate_on_submit():
        flash_form_problems(form)
        return _users_page(status=400, posted=(user_id, form))
    actor = request_actor("web")
    try:
        if action == "role":
            user = accounts.change_role(user_id, form.role.data, actor, form.reason.data)
        else:
            user = accounts.set_user_active(user_id, action == "enable", actor, form.reason.data)
    except (ValidationFailed, Conflict, NotFound) as exc:
        flash(f"Not changed: {_problem_text(exc)}", "error")
        status = 409 if isinstance(exc, Conflict) else 404 if isinstance(exc, NotFound) else 400
        return _users_page(status=status, posted=(user_id, form))
    done = {"role": f"is now {user.role}", "disable": "is disabled", "enable": "is enabled"}
    flash(f"User {user.username} {done[action]}.", "info")
    return redirect(url_for("web.admin_users"))


def _merchants_page(status: int = 200, new_key=None, create=None, posted=None):
    """The merchants page; `posted` = (merchant or key id, form) of a refused row form."""
    return render_template(
        "admin/merchants.html", merchants=accounts.list_merchants_with_keys(),
        create=create or CreateMerchantForm(), new_key=new_key, posted=posted,
    ), status


@web.get("/admin/merchants")
@require_permission("admin:manage")
def admin_merchants():
    return _merchants_page()


@web.post("/admin/merchants")
@require_permission("admin:manage")
def admin_create_merchant():
    form = CreateMerchantForm()
    if not form.validate_on_submit():
        flash_form_problems(form, "Merchant not created")
        return _merchants_page(400, create=form)
    try:
        merchant = accounts.create_merchant(form.name.data, request_actor("web"), unique_name=True)
    except (ValidationFailed, Conflict) as exc:
        form.name.errors = [*form.name.errors, _problem_text(exc)]
        return _merchants_page(409 if isinstance(exc, Conflict) else 400, create=form)
    flash(f"Merchant {merchant.name} created.", "info")
    return redirect(url_for("web.admin_merchants"))


@web.post("/admin/merchants/<merchant_id>/api-keys")
@require_permission("admin:manage")
def admin_create_api_key(merchant_id: str):
    form = CreateApiKeyForm()
    if not form.validate_on_submit():
        flash_form_problems(form, "API key not created")
        return _merchants_page(400, posted=(merchant_id, form))
    if not accounts.first_submission(form.sent_once.data):
        flash("This form was already sent (the page was reloaded?): its key was created then and "
              "shown once. Revoke it below if it was not copied, and create a new one.", "error")
        return _merchants_page(409)
    try:
        key, plain = accounts.create_api_key(merchant_id, form.name.data, request_actor("web"))
    except (NotFound, ValidationFailed) as exc:
        flash(f"API key not created: {_problem_text(exc)}", "error")
        return _merchants_page(404 if isinstance(exc, NotFound) else 400,
                               posted=(merchant_id, form))
    # Rendered, not redirected: the plain key appears on this one response and never again.
    # A blank "new merchant" form: both forms name their field `name`, and this POST's must not
    # turn up in the other (one click there would create a merchant named like the key).
    response = _merchants_page(201, new_key=(key, plain), create=CreateMerchantForm(formdata=None))
    return response[0], 201, {"Cache-Control": "no-store"}


@web.post("/admin/api-keys/<key_id>/revoke")
@require_permission("admin:manage")
def admin_revoke_api_key(key_id: str):
    form = ReasonForm()
    if not form.validate_on_submit():
        flash_form_problems(form, "Not revoked")
        return _merchants_page(400, posted=(key_id, form))
    try:
        key, revoked_now = accounts.revoke_api_key_once(
            key_id, request_actor("web"), form.reason.data
        )
    except NotFound as exc:
        flash(_problem_text(exc), "error")
        return _merchants_page(404)
    if revoked_now:
        flash(f"API key {key.prefix}… revoked; it is refused from now on.", "info")
    else:
        flash(f"API key {key.prefix}… was revoked already; nothing changed.", "info")
    return redirect(url_for("web.admin_merchants", _anchor=request.form.get("anchor") or None))
