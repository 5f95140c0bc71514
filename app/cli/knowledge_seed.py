"""Seed runbooks, knowledge base articles and an example postmortem (idempotent)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app.cli.runbook_content import RUNBOOKS
from app.extensions import db
from app.infra.models import KbArticle, Postmortem
from app.services import knowledge, postmortems, runbooks
from app.services.audit import Actor

ARTICLES = (
    knowledge.ArticleInput(
        title="Orders stuck in processing after a worker was killed",
        issue=(
            "After a host was recycled, about 40 orders stayed `processing` for ten minutes. "
            "The worker had been killed with SIGKILL while holding their saga leases."
        ),
        resolution=(
            "Nothing to do by hand: once the lease expired the scheduler re-drove them. "
            "If it does not, check the scheduler runs, then follow "
            "[stuck sagas](/runbooks/stuck-sagas).\n\n```\nflask --app wsgi check-integrity\n```"
        ),
        tags="saga worker scheduler",
    ),
    knowledge.ArticleInput(
        title="Payments fail with processing_error during provider maintenance",
        issue=(
            "A burst of `payment_error` failures at 02:00 UTC; the payment circuit breaker "
            "opened. The provider had announced maintenance."
        ),
        resolution=(
            "Switch on `payment_hold` before announced maintenance windows; sagas wait before "
            "the payment step instead of failing. See "
            "[payment provider down](/runbooks/payment-provider-down)."
        ),
        tags="payments circuit-breaker provider",
    ),
    knowledge.ArticleInput(
        title="Redis timeouts: the dashboard shows no queues",
        issue=(
            "`/queues` showed an error and `/readyz` answered 503 naming Redis. Redis had "
            "reached `maxmemory` with the `noeviction` policy."
        ),
        resolution=(
            "Raised `maxmemory` and cleaned up old failed jobs from /queues. Orders were never "
            "at risk: the database holds them. See [Redis down](/runbooks/redis-down)."
        ),
        tags="redis queues memory",
    ),
    knowledge.ArticleInput(
        title="Webhook deliveries failing for one merchant",
        issue=(
            "One merchant's endpoint answered 500 for an hour; their webhook deliveries "
            "retried with backoff and the webhooks queue grew."
        ),
        resolution=(
            "The merchant fixed their endpoint; the retries delivered every event in order. "
            "Failed deliveries after the last retry can be requeued from /queues."
        ),
        tags="webhooks merchant queues",
    ),
    knowledge.ArticleInput(
        title="Login refused with 429 for the whole office",
        issue=(
            "Staff behind one NAT address were refused at `/login` after a script retried "
            "wrong passwords: the login limit is per IP as well as per username."
        ),
        resolution=(
            "Stopped the script; the window reset after a minute. `RATELIMIT_AUTH` sets the "
            "limit (default `10 per minute`)."
        ),
        tags="login rate-limit",
    ),
)

EXAMPLE_POSTMORTEM = postmortems.PostmortemInput(
    title="Orders failed during a payment provider outage",
    incident_date=dt.date(2026, 11, 12),
    status="final",
    summary=(
        "For 38 minutes the payment provider answered most capture calls with errors; 212 orders "
        "failed with `payment_error` before the payment hold was switched on."
    ),
    impact=(
        "- 212 orders failed and had to be retried by hand (all later completed).\n"
        "- The order-success SLO burned 31% of its monthly error budget.\n"
        "- No customer was charged twice (`check-integrity` clean)."
    ),
    timeline=(
        "| time (UTC) | event |\n| --- | --- |\n"
        "| 14:02 | Provider starts returning errors |\n"
        "| 14:04 | Circuit breaker opens; retries continue at cooldown |\n"
        "| 14:09 | Fast-burn alert pages on-call |\n"
        "| 14:21 | On-call finds the provider status page and switches on `payment_hold` |\n"
        "| 14:40 | Provider recovers; hold switched off; held orders complete |\n"
        "| 15:05 | Failed orders retried from the dashboard |"
    ),
    root_cause=(
        "Sagas treated the provider's `503` as a permanent failure after the retry budget, so "
        "orders failed instead of waiting for the provider."
    ),
    trigger="A provider-side database failover that took 38 minutes instead of the usual 2.",
    resolution=(
        "`payment_hold` held new sagas before payment; failed orders were retried; the retry "
        "policy for provider 5xx was extended."
    ),
    detection="The order-success fast-burn alert, 7 minutes after the start.",
    went_well=(
        "- The circuit breaker stopped us hammering the provider.\n"
        "- The payment hold worked as designed."
    ),
    went_wrong=(
        "- 12 minutes from page to action: the runbook was not linked from the alert.\n"
        "- Retrying 212 orders one by one took half an hour."
    ),
    got_lucky="The outage happened at a quiet hour; at peak it would have been ~2,000 orders.",
)

EXAMPLE_ACTIONS = (
    postmortems.ActionItemInput(
        "Link every alert to its runbook (runbook_url)", "observability", "process",
        dt.date(2026, 11, 30),
    ),
    postmortems.ActionItemInput(
        "Switch on the payment hold automatically when the breaker stays open 5 min", "payments",
        "mitigate", dt.date(2026, 12, 15),
    ),
    postmortems.ActionItemInput(
        "Bulk retry of failed orders by failure reason on /orders", "dashboard", "prevent", None,
    ),
)


def seed_knowledge(actor: Actor) -> dict[str, int]:
    """Create missing runbooks (by slug), the demo articles and the example postmortem."""
    created = {"runbooks": 0, "articles": 0, "postmortems": 0}
    for spec in RUNBOOKS:
        created["runbooks"] += runbooks.ensure_runbook(spec, actor)
    titles = set(db.session.scalars(select(KbArticle.title)))
    for article in ARTICLES:
        if article.title not in titles:
            knowledge.create_article(article, actor)
            created["articles"] += 1
    if not db.session.scalar(select(Postmortem.id).where(
            Postmortem.title == EXAMPLE_POSTMORTEM.title)):
        postmortem = postmortems.create_postmortem(EXAMPLE_POSTMORTEM, actor)
        for item in EXAMPLE_ACTIONS:
            postmortems.add_action_item(postmortem.id, item, actor)
        created["postmortems"] += 1
    return created
