"""Checks every dashboard request passes before its view: sessions ended by a logout are refused,
and over HTTPS a state change must come from one of our own pages."""

from __future__ import annotations

import secrets

from flask import abort, current_app, request, session
from flask_login import current_user, logout_user
from flask_wtf.csrf import same_origin

from app.services import accounts
from app.web import web

SESSION_ID_KEY = "sid"  # a random id per login, so a logout can end that one session everywhere
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def start_session() -> None:
    """Give the session just logged in a fresh id (call right after login_user)."""
    session[SESSION_ID_KEY] = secrets.token_urlsafe(24)


def end_session() -> None:
    """Log out here, and refuse any copy of this session's cookie from now on."""
    session_id = session.pop(SESSION_ID_KEY, None)
    logout_user()  # also clears a remember-me cookie, should one ever be set
    if session_id:
        # A copied cookie stays correctly signed for PERMANENT_SESSION_LIFETIME after it was
        # last written (Flask checks the signature's age against it), so the record is kept
        # that long. The dashboard never issues remember-me cookies (login_user without
        # remember); a session rebuilt from one has no id and is refused below.
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        accounts.end_session(session_id, int(lifetime))


@web.before_request
def refuse_ended_sessions():
    """A logged-in session whose id was logged out (or that has no id) is treated as logged out."""
    # Load the user now (Flask-Login does it lazily), so a session it rebuilds from a remember-me
    # cookie is in `session` before the check below, not after it.
    _ = current_user.is_authenticated
    if "_user_id" not in session:
        return  # anonymous, or a caller authenticated by a header (the API's credentials)
    session_id = session.get(SESSION_ID_KEY)
    # No id: a session from before ids were given out, or one rebuilt from a remember-me cookie;
    # neither could be ended by a logout, so neither is trusted.
    if not session_id or accounts.session_ended(session_id):
        session.pop(SESSION_ID_KEY, None)
        logout_user()


@web.before_request
def require_same_origin_over_https():
    """The referrer check CSRFProtect makes over HTTPS (WTF_CSRF_SSL_STRICT), kept for the
    dashboard, whose CSRF tokens are checked by its forms instead (app/web/forms.py)."""
    if request.method not in UNSAFE_METHODS or not request.is_secure:
        return
    if not current_app.config.get("WTF_CSRF_SSL_STRICT", True):
        return
    if request.endpoint == "web.logout":
        return  # logging out is allowed from anywhere; see auth_views.logout
    if not request.referrer or not same_origin(request.referrer, f"https://{request.host}/"):
        abort(400, description="This form was not sent from this site's own pages.")
