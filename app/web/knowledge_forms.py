"""WTForms for the knowledge base, runbooks and postmortems (CSRF-protected by Flask-WTF)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, flash, redirect, render_template
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from app.domain.errors import ValidationFailed
from app.domain.runbooks import NO_STEPS
from app.services.postmortems import ACTION_KINDS, ACTION_STATES, STATUSES
from app.services.runbooks import OUTCOMES
from app.web.forms import DashboardForm

LONG_TEXT = Length(max=20_000)
# A typed date that does not parse says so (browsers without a date picker send what was typed).
BAD_DATE = "Not a valid date; write it as YYYY-MM-DD."


class ArticleForm(DashboardForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    issue = TextAreaField("Issue (what was seen; Markdown)", validators=[DataRequired(), LONG_TEXT])
    resolution = TextAreaField(
        "Resolution (what fixed it; Markdown)", validators=[DataRequired(), LONG_TEXT]
    )
    tags = StringField("Tags (space or comma separated)", validators=[Length(max=500)])


class RunbookForm(DashboardForm):
    slug = StringField("Link name (/runbooks/<slug>, permanent)", validators=[Length(max=80)])
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    summary = TextAreaField("Symptoms and when to use it (Markdown)",
                            validators=[DataRequired(), LONG_TEXT])
    steps = TextAreaField("Steps", validators=[DataRequired(NO_STEPS), Length(max=50_000)])


class StartRunForm(DashboardForm):
    reason = StringField(
        "What prompted this run (alert, incident, drill)",
        validators=[DataRequired(), Length(max=500)],
    )


class TickStepForm(DashboardForm):
    note = StringField("Note", validators=[Optional(), Length(max=1000)])


class FinishRunForm(DashboardForm):
    outcome = SelectField("Outcome", choices=list(OUTCOMES))
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])


class PostmortemForm(DashboardForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    # InputRequired, not DataRequired: DataRequired would replace "not a valid date" with
    # "This field is required." for a date that was typed but does not parse.
    incident_date = DateField(
        "Incident date", validators=[InputRequired()], invalid_value_message=BAD_DATE
    )
    status = SelectField("Status", choices=list(STATUSES))
    summary = TextAreaField("Summary", validators=[DataRequired(), LONG_TEXT])
    impact = TextAreaField("Impact", validators=[LONG_TEXT])
    timeline = TextAreaField("Timeline (UTC)", validators=[LONG_TEXT])
    root_cause = TextAreaField("Root cause", validators=[LONG_TEXT])
    trigger = TextAreaField("Trigger", validators=[LONG_TEXT])
    resolution = TextAreaField("Resolution", validators=[LONG_TEXT])
    detection = TextAreaField("Detection", validators=[LONG_TEXT])
    went_well = TextAreaField("What went well", validators=[LONG_TEXT])
    went_wrong = TextAreaField("What went wrong", validators=[LONG_TEXT])
    got_lucky = TextAreaField("Where we got lucky", validators=[LONG_TEXT])


class ActionItemForm(DashboardForm):
    description = StringField("Action item", validators=[DataRequired(), Length(max=2000)])
    owner = StringField("Owner", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Type", choices=list(ACTION_KINDS), default="prevent")
    due_date = DateField("Due", validators=[Optional()], invalid_value_message=BAD_DATE)


class ActionStateForm(DashboardForm):
    state = SelectField("State", choices=list(ACTION_STATES))
    reason = StringField("Why", validators=[Optional(), Length(max=500)])


def save_and_redirect(form: FlaskForm, save: Callable[[], str], message: str) -> Response | None:
    """For a valid submitted form, call save() (which returns where to go) and redirect there;
    None when the form must be shown again (its errors, the service's included, are on it)."""
    if not form.validate_on_submit():
        return None
    try:
        target = save()
    except ValidationFailed as error:
        show_errors(form, error)
        return None
    flash(message, "info")
    return redirect(target)


def form_page(template: str, form: FlaskForm, **context):
    """Render a form page: 400 when it came back with errors, 200 when it is new."""
    return render_template(template, form=form, **context), 400 if form.is_submitted() else 200


def show_errors(form: FlaskForm, error: ValidationFailed) -> None:
    """Put a service's field errors next to the form's fields (or on the form as a whole)."""
    for field_error in error.errors:
        field = getattr(form, field_error.field, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, field_error.message]
        else:
            form.form_errors.append(f"{field_error.field}: {field_error.message}")
