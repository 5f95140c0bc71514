"""Binds Flask-Login: session users for the dashboard, header credentials for the API."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for

from app.auth.principals import principal_from_headers
from app.extensions import login_manager


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        from app.services.accounts import get_user

        # The API authenticates by header only: a dashboard session cookie must not work there
        # (CSRF), and must not be touched either (the dashboard tab stays logged in).
        if is_api_request():
            return None
        user = get_user(user_id)
        return user if user is not None and user.is_active else None

    @login_manager.request_loader
    def load_from_headers(req):
        return principal_from_headers(req)

    @login_manager.unauthorized_handler
    def unauthorized():
        # API callers get JSON 401 (problem+json), never a redirect to the HTML login page.
        if is_api_request():
            from app.problems import problem_response

            return problem_response(401, detail="Valid credentials are required.")
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
