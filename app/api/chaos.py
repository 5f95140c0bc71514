"""Chaos drills for admins: GET/PUT/DELETE /api/v1/admin/chaos (provider failure rate, latency)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.api import api
from app.api.openapi import documented
from app.api.parsing import parse_body
from app.api.schemas import Strict
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.domain.chaos import MAX_LATENCY_MS
from app.services import chaos

RATE = Field(default=None, ge=0, le=1, description="share of calls failing transiently")
LATENCY = Field(default=None, ge=0, le=MAX_LATENCY_MS, description="extra milliseconds per call")


class ChaosUpdate(Strict):
    payment_failure_rate: float | None = RATE
    payment_latency_ms: int | None = LATENCY
    shipping_failure_rate: float | None = RATE
    shipping_latency_ms: int | None = LATENCY
    reason: str | None = Field(default=None, max_length=500)


class ChaosOut(BaseModel):
    payment_failure_rate: float
    payment_latency_ms: int
    shipping_failure_rate: float
    shipping_latency_ms: int


@api.get("/admin/chaos")
@documented("The chaos-drill knobs in force", responses={200: ChaosOut}, tag="admin")
@require_permission("admin:manage")
def get_chaos():
    return chaos.chaos_settings()


@api.put("/admin/chaos")
@documented(
    "Change chaos-drill knobs: every process applies them at once (audited)",
    body=ChaosUpdate,
    responses={200: ChaosOut},
    tag="admin",
)
@require_permission("admin:manage")
def put_chaos():
    body = parse_body(ChaosUpdate)
    changes = body.model_dump(exclude_none=True, exclude={"reason"})
    return chaos.update_chaos(changes, request_actor("api"), body.reason)


@api.delete("/admin/chaos")
@documented("End the drill: every knob back to 0 (audited)", responses={200: ChaosOut},
            tag="admin")
@require_permission("admin:manage")
def reset_chaos():
    return chaos.reset_chaos(request_actor("api"))
