"""Idempotency keys: claim a key before the work, store the first response, replay it after.

The claim is an INSERT under the (scope, key) unique constraint, committed before the work starts,
so of any number of concurrent requests exactly one wins on every database; the others see the
claim and answer "in flight" (409) or, once the winner stored its response, replay it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.infra.models import IdempotencyRecord
from app.infra.models.base import utcnow

KEEP_FOR = dt.timedelta(hours=24)
# A claim older than this without a stored response belongs to a request that died mid-way.
ABANDONED_AFTER = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: `won` (do the work), or one of the three refusals."""

    outcome: str  # won | replay | in_flight | reused | recover
    record_seq: int | None = None
    response: StoredResponse | None = None


SEALED_PREFIX = "sealed:"


class ReplayUnavailable(Exception):
    """A sealed first response can no longer be opened (the key sealing it was rotated)."""


def _replay_fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"idempotent-replay\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(body: str, secret_key: str) -> str:
    """A first response that shows a secret (an API key, a signing secret) is stored encrypted:
    the secret itself is kept only as a hash, and must not sit in clear in this table either."""
    return SEALED_PREFIX + _replay_fernet(secret_key).encrypt(body.encode()).decode()


def unseal(body: str, secret_key: str) -> str:
    if not body.startswith(SEALED_PREFIX):
        return body
    try:
        return _replay_fernet(secret_key).decrypt(body[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken:
        raise ReplayUnavailable from None


def claim(scope: str, key: str, method: str, path: str, request_hash: str) -> Claim:
    """Claim `key` for this request, or say why not (replay, in flight, reused elsewhere)."""
    now = utcnow()
    for _ in range(3):
        record = IdempotencyRecord(
            scope=scope,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            state="in_flight",
            created_at=now,
            expires_at=now + KEEP_FOR,
        )
        db.session.add(record)
        try:
            db.session.commit()
            return Claim("won", record.seq)
        except IntegrityError:
            db.session.rollback()
        existing = db.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
        if existing is None:
            continue  # released meanwhile: claim again
        if existing.expires_at <= now or _abandoned(existing, now):
            _take_over(existing.seq, existing.state)
            continue
        if existing.request_hash != request_hash:
            return Claim("reused", existing.seq)
        if existing.state == COMMITTED:
            # The first request created its resource and died before storing its answer.
            return Claim("recover", existing.seq, StoredResponse(
                existing.response_status or 200, "", dict(existing.response_headers or {})))
        if existing.state != "completed":
            return Claim("in_flight", existing.seq)
        return Claim(
            "replay",
            existing.seq,
            StoredResponse(
                existing.response_status or 200,
                existing.response_body or "",
                dict(existing.response_headers or {}),
            ),
        )
    return Claim("in_flight")


# A claim whose work committed (the resource exists) but whose response was never stored: the
# request died between its commit and `complete` (its worker killed, the database gone). It is
# never taken over - that would create the resource twice - but answered from the resource.
COMMITTED = "committed"


def mark_committed(connection, record_seq: int, status: int, headers: dict[str, str]) -> None:
    """In the work's own transaction: the claim's resource exists from this commit on (what to
    answer, without the body: the status and e.g. the Location naming the resource)."""
    connection.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.seq == record_seq, IdempotencyRecord.state == "in_flight")
        .values(state=COMMITTED, response_status=status, response_headers=headers)
    )


def _abandoned(record: IdempotencyRecord, now: dt.datetime) -> bool:
    return record.state == "in_flight" and record.created_at <= now - ABANDONED_AFTER


def _take_over(seq: int, state: str) -> None:
    """Delete an expired or abandoned claim, unless another request changed it first."""
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.seq == seq, IdempotencyRecord.state == state
        )
    )
    db.session.commit()


def complete(record_seq: int, response: StoredResponse) -> None:
    """Store the first response so that later requests with the key replay it."""
    db.session.rollback()  # the work's own transaction is over; start clean
    db.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.seq == record_seq)
        .values(
            state="completed",
            response_status=response.status,
            response_body=response.body,
            response_headers=response.headers,
        )
    )
    db.session.commit()


def release(record_seq: int) -> None:
    """Give the key back after a failed attempt, so the client may retry with it (not once its
    work committed: `mark_committed` moved it out of `in_flight`)."""
    db.session.rollback()
    db.session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.seq == record_seq, IdempotencyRecord.state == "in_flight"
        )
    )
    db.session.commit()


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete keys past their 24 h; returns how many (for a periodic job)."""
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow()))
    )
    db.session.commit()
    return result.rowcount or 0
