"""Feature flags: release toggles, operational switches and kill switches, kept in the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.infra.models.base import UTCDateTime, utcnow


class FeatureFlag(db.Model):
    __tablename__ = "feature_flags"
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # release | operational | kill_switch
    type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(default=False)
    # Share of merchants (0-100) that see the flag on while it is enabled; stable per merchant.
    rollout_percentage: Mapped[int] = mapped_column(default=100)
    # {merchant_id: true|false}: a per-merchant answer that wins over enabled and rollout.
    overrides: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))
