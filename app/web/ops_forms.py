"""WTForms forms of the operations pages (shift, orders, queues, flags, admin, audit)."""

from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from app.web.forms import DashboardForm


def choices(values) -> list[SelectChoice]:
    """"any" first, then the values (a dict gives value -> label)."""
    labels = values if isinstance(values, dict) else {v: v for v in values}
    return [SelectChoice("", "any")] + [SelectChoice(v, label) for v, label in labels.items()]


ROLE_CHOICES = [SelectChoice("viewer"), SelectChoice("operator"), SelectChoice("admin")]


class ReasonForm(DashboardForm):
    """Every state change asks why; the answer lands in the audit log."""

    reason = TextAreaField(
        "Reason", validators=[DataRequired(message="Say why."), Length(min=3, max=500)]
    )


class ConfirmForm(ReasonForm):
    confirm = BooleanField("I understand and want to do this", validators=[DataRequired(
        message="Tick the box to confirm.")])
    job_id = HiddenField()


def check_day_range(first, last) -> None:
    """UTC days, like every time on the pages, "to" taking in its whole day: a range that ends
    before it starts matches nothing, so say so rather than show an empty list."""
    if first.data and last.data and last.data < first.data:
        raise ValidationError(
            f"is before From ({first.data.isoformat()}), so nothing can match; swap the dates."
        )


class OrderFilterForm(DashboardForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    status = SelectField("Status", validators=[Optional()])
    merchant = SelectField("Merchant", validators=[Optional()])
    failure_reason = SelectField("Failure reason", validators=[Optional()])
    created_from = DateField("From (UTC)", validators=[Optional()])
    created_to = DateField("To (UTC, inclusive)", validators=[Optional()])
    q = StringField("Order id or email", validators=[Optional(), Length(max=320)])

    def validate_created_to(self, field) -> None:
        check_day_range(self.created_from, field)


class FlagForm(ReasonForm):
    enabled = BooleanField("On")
    rollout_percentage = IntegerField(
        "Rollout %", validators=[InputRequired(), NumberRange(min=0, max=100)]
    )
    overrides = TextAreaField(
        "Per-merchant overrides",
        description="One per line: merchant id = on|off",
        validators=[Optional(), Length(max=5000)],
    )


class CreateUserForm(DashboardForm):
    username = StringField("Username", validators=[DataRequired(), Length(min=3, max=150)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=12, max=1024)])
    role = SelectField("Role", choices=ROLE_CHOICES)


class ChangeRoleForm(ReasonForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class CreateMerchantForm(DashboardForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])


class CreateApiKeyForm(DashboardForm):
    name = StringField("Key name", validators=[DataRequired(), Length(max=200)])
    # A one-off token per rendered form: a reload that posts the page again creates no second key.
    sent_once = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class AuditFilterForm(DashboardForm):
    class Meta:
        csrf = False

    actor = StringField("Actor", validators=[Optional(), Length(max=200)])
    action = StringField("Action", validators=[Optional(), Length(max=60)])
    target_type = StringField("Target type", validators=[Optional(), Length(max=40)])
    target_id = StringField("Target id", validators=[Optional(), Length(max=200)])
    source = SelectField(
        "Source",
        choices=choices(("web", "api", "cli", "system")),
        validators=[Optional()],
    )
    first_day = DateField("From (UTC)", validators=[Optional()])
    last_day = DateField("To (UTC, inclusive)", validators=[Optional()])

    def validate_last_day(self, field) -> None:
        check_day_range(self.first_day, field)
