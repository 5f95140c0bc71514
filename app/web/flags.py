"""/flags: every feature flag; admins toggle them and set the rollout, with a reason."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.auth.permissions import can
from app.domain.errors import NotFound, ValidationFailed
from app.services import accounts, flags
from app.web import web
from app.web.forms import form_problems
from app.web.ops_forms import FlagForm


def overrides_text(overrides: dict[str, bool]) -> str:
    return "\n".join(f"{m} = {'on' if on else 'off'}" for m, on in sorted(overrides.items()))


def parse_overrides(text: str | None) -> dict[str, bool]:
    """`merchant id = on|off` lines to a dict; ValueError names the first bad line."""
    result = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        merchant, _, value = line.partition("=")
        value = value.strip().lower()
        if not merchant.strip() or value not in ("on", "off"):
            raise ValueError(f"line {number}: write `merchant id = on` or `= off`")
        result[merchant.strip()] = value == "on"
    return result


def _refuse_unknown_merchants(overrides: dict[str, bool]) -> None:
    """ValueError naming the override lines whose merchant does not exist: such an override
    would be saved and silently never match an order."""
    unknown = accounts.unknown_merchant_ids(overrides)
    if unknown:
        raise ValueError("no merchant has the id " + ", ".join(unknown))


def _forms() -> dict[str, FlagForm]:
    return {
        f.name: FlagForm(
            prefix=f.name, enabled=f.enabled, rollout_percentage=f.rollout_percentage,
            overrides=overrides_text(f.overrides or {}), formdata=None,
        )
        for f in flags.list_flags()
    }


@web.get("/flags")
@require_permission("dashboard:read")
def flag_list():
    forms = _forms() if can(current_user, "flags:write") else {}
    return render_template("flags/list.html", flags=flags.list_flags(), forms=forms)


@web.post("/flags/<name>")
@require_permission("flags:write")
def flag_update(name: str):
    form = FlagForm(prefix=name)
    try:
        flag = flags.get_flag(name)
    except NotFound:
        abort(404, description="No such flag.")
    error = None
    if form.validate_on_submit():
        try:
            overrides = parse_overrides(form.overrides.data)
            _refuse_unknown_merchants(overrides)
            before = flags.flag_state(flag)
            updated = flags.set_flag(
                flag.name, enabled=form.enabled.data,
                rollout_percentage=form.rollout_percentage.data,
                overrides=overrides, actor=request_actor("web"), reason=form.reason.data,
            )
        except ValidationFailed as exc:
            error = "; ".join(f"{e.field} {e.message}" for e in exc.errors)
        except ValueError as exc:
            form.overrides.errors = [*form.overrides.errors, str(exc)]
        else:
            if flags.flag_state(updated) == before:
                flash(f"Flag {flag.name} was in that state already; nothing changed.", "info")
            else:
                flash(f"Flag {flag.name} updated; every process sees it within 5 s.", "info")
            return redirect(url_for("web.flag_list"))
    forms = _forms()
    forms[name] = form
    flash(error or f"The flag was not changed: {form_problems(form)}", "error")
    return render_template("flags/list.html", flags=flags.list_flags(), forms=forms), 400
