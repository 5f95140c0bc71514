"""Cursor pagination, newest first, by each table's strictly increasing `seq`.

A cursor names the last row seen, so rows inserted while a client pages (they get larger seqs) can
neither shift a page nor be repeated or skipped in the pages still to come.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select

from app.domain.errors import FieldError, ValidationFailed
from app.extensions import db

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The seq a cursor names; 422 for anything encode_cursor could not have made (int() alone
    would take " 5", "5\n" or other scripts' digits; base64 would take padding and stray bytes)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, seq = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        if version != "v1" or not (seq.isascii() and seq.isdigit()):
            raise ValueError(version)
        if not 0 < int(seq) < 2**31 or encode_cursor(int(seq)) != cursor:  # seq is 32-bit
            raise ValueError(seq)
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed([FieldError("cursor", "not a cursor this API gave out")]) from None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed([FieldError("limit", f"must be between 1 and {MAX_LIMIT}")])
    return limit


def paginate(query: Select, seq_column, limit: int | None, cursor: str | None) -> Page:
    """One page of `query` (which selects model rows), newest first."""
    limit = check_limit(limit)
    if cursor:
        query = query.where(seq_column < decode_cursor(cursor))
    rows = list(db.session.scalars(query.order_by(seq_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor(rows[-1].seq) if more and rows else None)


def within_days(query: Select, column, first_day: dt.date | None, last_day: dt.date | None):
    """`query` limited to rows whose `column` falls on UTC days first_day..last_day (both whole
    days; either may be open)."""
    if first_day:
        query = query.where(column >= dt.datetime.combine(first_day, dt.time(), dt.UTC))
    if last_day and last_day < dt.date.max:  # up to 9999-12-31 inclusive means no end at all
        end = dt.datetime.combine(last_day, dt.time(), dt.UTC) + dt.timedelta(days=1)
        query = query.where(column < end)
    return query
