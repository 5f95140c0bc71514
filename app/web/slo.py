"""/slo: each objective's target, SLIs, error budget left, burn rates and alert state."""

from __future__ import annotations

from flask import render_template

from app.auth.decorators import require_permission
from app.domain.slo import BURN_RATE_ALERTS, SLI_WINDOWS, WINDOWS
from app.services import slo
from app.web import web


@web.get("/slo")
@require_permission("dashboard:read")
def slo_page():
    overview = slo.slo_overview()
    return render_template(
        "slo.html",
        overview=overview,
        firing=slo.firing_alerts(overview),
        sli_windows=SLI_WINDOWS,
        burn_windows=list(WINDOWS),
        burn_alerts=BURN_RATE_ALERTS,
    )
