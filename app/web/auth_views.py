"""/login and /logout: session login for staff."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from app.auth.rate_limits import limit_login_attempts, take_back_username_attempt
from app.services import accounts
from app.web import web
from app.web.forms import LoginForm, LogoutForm
from app.web.guards import end_session, start_session

STAFF_ROLES = ("admin", "operator", "viewer")


def safe_next(target: str | None) -> str:
    """Only local paths: `next` must never send a user to another site."""
    if not target:
        return url_for("web.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.index")
    if "\\" in target:
        return url_for("web.index")
    return target


def _too_many_attempts(state):
    """Over RATELIMIT_AUTH (per IP or per username): the form again, with a message, 429."""
    flash(f"Too many sign-in attempts. Try again in {state.reset_seconds} seconds.", "error")
    response = current_app.make_response((render_template("login.html", form=LoginForm()), 429))
    response.headers["Retry-After"] = str(max(1, state.reset_seconds))
    return response


@web.route("/login", methods=["GET", "POST"])
@limit_login_attempts(_too_many_attempts)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.username.data, form.password.data)
        if user is None or user.role not in STAFF_ROLES:
            flash("Wrong username or password.", "error")
            return render_template("login.html", form=form), 401
        take_back_username_attempt(form.username.data)
        login_user(user)
        start_session()
        return redirect(safe_next(request.args.get("next")))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


@web.route("/logout", methods=["GET", "POST"])
def logout():
    """POST logs out; GET, e.g. a typed URL, asks first (a GET must never change anything).

    Like every dashboard POST it needs a valid CSRF token (a forged cross-site request must not
    end anyone's shift). A logout button on a page left open longer than WTF_CSRF_TIME_LIMIT (or
    across a SECRET_KEY rotation) carries a stale token: that answers the confirmation page with a
    fresh one and says so - one more click, never a dead end.
    """
    if not current_user.is_authenticated:
        return redirect(url_for("web.login"))
    if request.method == "GET":
        return render_template("logout.html", form=LogoutForm())
    form = LogoutForm()
    if not form.validate():
        return render_template("logout.html", form=LogoutForm(formdata=None), expired=True), 400
    end_session()
    flash("You are logged out.", "info")
    return redirect(url_for("web.login"))
