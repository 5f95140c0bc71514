"""Service level objectives, defined once: the scheduler's evaluation, /slo, the Prometheus rules
and the Grafana dashboard are all generated from these definitions.

Pure: counts in, SLIs, error budgets, burn rates and alert states out (Google SRE workbook,
"multiwindow, multi-burn-rate alerts").
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60
HOUR = 3600
DAY = 86400

# The SLO period: the error budget is spent over 30 days.
PERIOD_SECONDS = 30 * DAY


@dataclass(frozen=True)
class Window:
    name: str  # as Prometheus spells a range: 5m, 1h, 30d
    seconds: int


WINDOWS = {
    w.name: w
    for w in (
        Window("5m", 5 * MINUTE),
        Window("30m", 30 * MINUTE),
        Window("1h", HOUR),
        Window("6h", 6 * HOUR),
        Window("24h", DAY),
        Window("3d", 3 * DAY),
        Window("30d", PERIOD_SECONDS),
    )
}
# The windows /slo shows an SLI for.
SLI_WINDOWS = ("1h", "6h", "24h", "30d")


@dataclass(frozen=True)
class BurnRateAlert:
    """Fire when the error budget burns at `factor` x the sustainable rate over both windows."""

    name: str
    factor: float
    long_window: str
    short_window: str
    severity: str  # page | ticket
    # Prometheus `for:` - a short hold so one scrape blip does not page anyone.
    hold: str


BURN_RATE_ALERTS = (
    BurnRateAlert("fast", 14.4, "1h", "5m", "page", "2m"),  # 2% of the budget in 1 h
    BurnRateAlert("medium", 6.0, "6h", "30m", "page", "5m"),  # 5% of the budget in 6 h
    BurnRateAlert("slow", 1.0, "3d", "6h", "ticket", "30m"),  # 10% of the budget in 3 d
)


@dataclass(frozen=True)
class Objective:
    """One SLO: the share of `good` events among all events that must hold over the period."""

    slug: str  # also the counter family in the bucket store: api_availability, ...
    title: str
    description: str
    target: float  # 0.999 means 99.9% of events good
    runbook: str  # /runbooks/<runbook>
    alert_name: str  # Prometheus alert name prefix
    # PromQL of the bad-event ratio over `{window}`, on app.observability.metrics' series.
    error_ratio_promql: str

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad."""
        return 1.0 - self.target


API_SELECTOR = 'endpoint=~"/api/v1/.*"'
ORDER_FINAL_SECONDS = 5.0
API_LATENCY_SECONDS = 0.3

ORDER_LATENCY = Objective(
    slug="order_latency",
    title="Orders final within 5 s",
    description="99% of accepted orders reach completed, failed or cancelled within 5 seconds.",
    target=0.99,
    runbook="slow-order-processing",
    alert_name="SlowOrderProcessing",
    error_ratio_promql=(
        "1 - (sum(rate(order_processing_duration_seconds_bucket{{le=\"5.0\"}}[{window}]))"
        " / sum(rate(order_processing_duration_seconds_count[{window}])))"
    ),
)
API_AVAILABILITY = Objective(
    slug="api_availability",
    title="API requests without a server error",
    description="99.9% of /api/v1 requests answer with a status below 500.",
    target=0.999,
    runbook="high-error-rate",
    alert_name="ApiHighErrorRate",
    error_ratio_promql=(
        f"sum(rate(http_requests_total{{{{{API_SELECTOR},status=~\"5..\"}}}}[{{window}}]))"
        f" / sum(rate(http_requests_total{{{{{API_SELECTOR}}}}}[{{window}}]))"
    ),
)
API_LATENCY = Objective(
    slug="api_latency",
    title="API requests within 300 ms",
    description="99% of /api/v1 requests are answered within 300 milliseconds.",
    target=0.99,
    runbook="slow-api",
    alert_name="SlowApi",
    error_ratio_promql=(
        f"1 - (sum(rate(http_request_duration_seconds_bucket{{{{{API_SELECTOR},le=\"0.3\"}}}}"
        f"[{{window}}])) / sum(rate(http_request_duration_seconds_count{{{{{API_SELECTOR}}}}}"
        f"[{{window}}])))"
    ),
)
OBJECTIVES = (ORDER_LATENCY, API_AVAILABILITY, API_LATENCY)
OBJECTIVE_BY_SLUG = {o.slug: o for o in OBJECTIVES}


@dataclass(frozen=True)
class Counts:
    """Events in one window: all of them, and how many were bad."""

    total: int = 0
    bad: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.total + other.total, self.bad + other.bad)


def sli(counts: Counts) -> float | None:
    """The share of good events; None when there were none (no traffic is not 100% or 0%)."""
    if counts.total <= 0:
        return None
    return (counts.total - min(counts.bad, counts.total)) / counts.total


def burn_rate(counts: Counts, objective: Objective) -> float:
    """How fast the error budget burns: 1.0 spends it exactly over the period; 0 without traffic."""
    if counts.total <= 0:
        return 0.0
    return (min(counts.bad, counts.total) / counts.total) / objective.error_budget


def error_budget_left(period: Counts, objective: Objective) -> float:
    """The share of the period's error budget not yet spent (1.0 untouched, below 0 overspent)."""
    if period.total <= 0:
        return 1.0
    allowed = period.total * objective.error_budget
    return 1.0 - min(period.bad, period.total) / allowed


@dataclass(frozen=True)
class AlertState:
    alert: BurnRateAlert
    long_burn: float
    short_burn: float

    @property
    def firing(self) -> bool:
        """Both windows burn at least `factor` x: fast enough to matter, and still going on."""
        return self.long_burn >= self.alert.factor and self.short_burn >= self.alert.factor


@dataclass(frozen=True)
class Evaluation:
    objective: Objective
    sli: dict[str, float | None]  # by SLI_WINDOWS
    counts: dict[str, Counts]  # by every window
    budget_left: float
    burn_rates: dict[str, float]  # by every window
    alerts: tuple[AlertState, ...]

    @property
    def firing(self) -> tuple[AlertState, ...]:
        return tuple(a for a in self.alerts if a.firing)

    @property
    def state(self) -> str:
        """page | ticket | ok | no_data: the most severe firing alert wins."""
        severities = {a.alert.severity for a in self.firing}
        if "page" in severities:
            return "page"
        if "ticket" in severities:
            return "ticket"
        return "ok" if self.counts[WINDOWS["30d"].name].total else "no_data"


def evaluate(objective: Objective, counts: dict[str, Counts]) -> Evaluation:
    """Every SLI, the budget left, the burn rates and the alert states from counts per window."""
    missing = set(WINDOWS) - set(counts)
    if missing:
        raise ValueError(f"counts missing for windows {sorted(missing)}")
    burns = {name: burn_rate(c, objective) for name, c in counts.items()}
    alerts = tuple(
        AlertState(alert, burns[alert.long_window], burns[alert.short_window])
        for alert in BURN_RATE_ALERTS
    )
    return Evaluation(
        objective=objective,
        sli={name: sli(counts[name]) for name in SLI_WINDOWS},
        counts=dict(counts),
        budget_left=error_budget_left(counts["30d"], objective),
        burn_rates=burns,
        alerts=alerts,
    )
