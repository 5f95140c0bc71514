"""Template filters of the operations pages."""

from __future__ import annotations

import datetime as dt
import secrets

from app.services import flags
from app.web import web


@web.app_template_filter("ago")
def ago(value: dt.datetime | None) -> str:
    """'12 s ago', '3 min ago': how fresh a heartbeat or a change is."""
    if value is None:
        return "never"
    seconds = (dt.datetime.now(dt.UTC) - value).total_seconds()
    if seconds < 90:
        return f"{max(0, int(seconds))} s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


@web.app_template_filter("ts_ms")
def timestamp_ms(value: dt.datetime | None) -> str:
    """A timeline time to the millisecond: steps of one saga often share a second."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if value else ""


@web.app_template_filter("ms")
def milliseconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


@web.app_context_processor
def dashboard_switches() -> dict:
    """The operational flag pages read for their auto-refresh (progressive enhancement)."""
    return {
        "auto_refresh": lambda: flags.is_enabled(flags.DASHBOARD_AUTO_REFRESH, default=True),
        "one_off_token": lambda: secrets.token_urlsafe(24),  # for forms that must act once
    }
