"""WTForms forms (CSRF-protected by Flask-WTF) and the base every dashboard form builds on.

CSRF on the dashboard is checked by the forms, not by CSRFProtect's global before_request (the web
blueprint is exempt from it, see app/web/__init__.py): a global check answers a stale token with a
bare 400 before the view runs, so the page and whatever the user typed are lost. Here a missing,
expired or foreign token fails `form.validate()` like any other field, the view shows its page
again with the input kept, and the form says it expired. Every state-changing dashboard POST
validates a DashboardForm (tests/web/test_dashboard_csrf.py walks app.url_map to hold us to it),
/logout included.
"""

from flask import flash
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

FORM_EXPIRED = "This form expired; check and submit again."


class DashboardForm(FlaskForm):
    """A FlaskForm whose failed CSRF check reads as one form-level error: FORM_EXPIRED."""

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        csrf_field = getattr(self, "csrf_token", None) if self.meta.csrf else None
        if csrf_field is not None and csrf_field.errors:
            # Flask-WTF's reasons ("The CSRF token is missing.", "... has expired.") mean nothing
            # to staff; the page says the form expired, once, where form-level errors go.
            csrf_field.errors = []
            if FORM_EXPIRED not in self.form_errors:
                self.form_errors.append(FORM_EXPIRED)
        return valid


def form_problems(form: FlaskForm) -> str:
    """Every error of a validated form as one sentence, for a flash message."""
    parts = list(form.form_errors)
    for field in form:
        parts.extend(f"{field.label.text}: {error}" for error in field.errors)
    return "; ".join(parts) or "check the fields and submit again."


def flash_form_problems(form: FlaskForm, lead: str = "Not changed") -> None:
    """Flash `lead: <every error of the form>` (pages whose forms show no errors themselves)."""
    flash(f"{lead}: {form_problems(form)}", "error")


class LoginForm(DashboardForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class LogoutForm(DashboardForm):
    pass
