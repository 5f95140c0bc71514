"""Feature flags for admins: GET /api/v1/flags and PUT /api/v1/flags/{name}."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool, StrictInt

from app.api import api
from app.api.openapi import documented
from app.api.parsing import parse_body
from app.api.schemas import Strict
from app.api.serializers import rfc3339
from app.auth.actors import request_actor
from app.auth.decorators import require_permission
from app.services import flags


class FlagUpdate(Strict):
    enabled: StrictBool
    rollout_percentage: StrictInt | None = Field(default=None, ge=0, le=100)
    reason: str | None = Field(default=None, max_length=500)


class FlagOut(BaseModel):
    name: str
    type: str
    enabled: bool
    rollout_percentage: int | None
    description: str | None
    updated_at: str | None
    updated_by: str | None


class FlagList(BaseModel):
    data: list[FlagOut]


def flag_json(flag) -> dict[str, Any]:
    return {
        "name": flag.name,
        "type": flag.type,
        "enabled": flag.enabled,
        "rollout_percentage": flag.rollout_percentage,
        "description": flag.description,
        "updated_at": rfc3339(flag.updated_at),
        "updated_by": flag.updated_by,
    }


@api.get("/flags")
@documented("Every feature flag", responses={200: FlagList}, tag="admin")
@require_permission("flags:write")
def list_flags():
    return {"data": [flag_json(f) for f in flags.list_flags()]}


@api.put("/flags/<name>")
@documented(
    "Set a flag; every process follows within 5 s", body=FlagUpdate, responses={200: FlagOut},
    tag="admin",
)
@require_permission("flags:write")
def put_flag(name: str):
    body = parse_body(FlagUpdate)
    flag = flags.set_flag(
        name,
        enabled=body.enabled,
        rollout_percentage=body.rollout_percentage,
        actor=request_actor("api"),
        reason=body.reason,
        # PUT creates: an unknown name becomes a release flag (kill switches are built in).
        create_type="release",
    )
    return flag_json(flag)
