"""SLO event counts by time bucket in Redis: shared by every process and surviving restarts.

Each event is counted twice in one round trip: in a per-minute hash (kept 7 hours, enough for
the 5 m..6 h windows) and a per-hour hash (kept 31 days, for the 24 h, 3 d and 30 d windows). So a
30-day window reads 720 small hashes, not 43,200. Windows longer than 6 h are therefore aligned to
whole hours (the current, partial hour included).

Request hooks count through `record_soon`: the counts are summed in the process and written by a
background thread at most a second later (one pipeline per second, not one per request: that
round trip was a sixth of an order read). `counts` writes the process's own pending counts first.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable

import redis

from app.domain.slo import HOUR, MINUTE, WINDOWS, Counts

log = logging.getLogger(__name__)

MINUTE_TTL = 7 * HOUR
HOUR_TTL = 31 * 86400
# Windows up to this length are read from minute buckets.
MINUTE_RESOLUTION_LIMIT = 6 * HOUR
# After a Redis failure, skip recording for this long rather than slow every request down.
_BACKOFF_SECONDS = 5.0
FLUSH_INTERVAL_SECONDS = 1.0
# Buffered counts older than this are dropped if Redis stays away (their minute buckets expire).
_PENDING_MAX_AGE_MINUTES = MINUTE_TTL // MINUTE


class SloBuckets:
    def __init__(self, connection: redis.Redis, prefix: str = ""):
        self.connection = connection
        self.prefix = prefix
        self._skip_until = 0.0
        self._pending: Counter[tuple[int, str]] = Counter()  # (minute, "slug:total|bad") -> n
        self._lock = threading.Lock()
        self._watched_in: int | None = None  # the process whose flusher writes this buffer

    def _minute_key(self, minute: int) -> str:
        return f"{self.prefix}slo:m:{minute}"

    def _hour_key(self, hour: int) -> str:
        return f"{self.prefix}slo:h:{hour}"

    def record(self, events: Iterable[tuple[str, bool]], at: float | None = None) -> bool:
        """Count (objective slug, is_bad) events; False (and logged) when Redis is unavailable."""
        now = time.time() if at is None else at
        if at is None and now < self._skip_until:
            return False
        counts: Counter[tuple[int, str]] = Counter()
        _add(counts, int(now // MINUTE), events)
        try:
            self._write(counts)
            return True
        except redis.RedisError as exc:
            self._skip_until = time.time() + _BACKOFF_SECONDS
            log.warning("SLO bucket write failed", extra={"error": type(exc).__name__})
            return False

    def record_soon(self, events: Iterable[tuple[str, bool]]) -> None:
        """Count (objective slug, is_bad) events within FLUSH_INTERVAL_SECONDS, without a round
        trip now (for request hooks)."""
        minute = int(time.time() // MINUTE)
        with self._lock:
            _add(self._pending, minute, events)
        _flusher.watch(self)

    def flush(self, force: bool = False) -> bool:
        """Write the buffered counts; on a Redis failure they stay buffered for the next try
        (made after a back-off unless forced, so an outage logs one warning per back-off)."""
        if not force and time.time() < self._skip_until:
            return False
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return True
        try:
            self._write(pending)
            return True
        except redis.RedisError as exc:
            oldest = int(time.time() // MINUTE) - _PENDING_MAX_AGE_MINUTES
            with self._lock:
                for (minute, field), amount in pending.items():
                    if minute > oldest:
                        self._pending[(minute, field)] += amount
            self._skip_until = time.time() + _BACKOFF_SECONDS
            log.warning("SLO bucket write failed", extra={"error": type(exc).__name__})
            return False

    def _write(self, counts: Counter[tuple[int, str]]) -> None:
        """Add (minute, field) counts to their minute and hour hashes in one pipeline (raises
        RedisError)."""
        pipe = self.connection.pipeline(transaction=False)
        keys: dict[str, int] = {}
        for (minute, field), amount in counts.items():
            minute_key, hour_key = self._minute_key(minute), self._hour_key(minute * MINUTE // HOUR)
            pipe.hincrby(minute_key, field, amount)
            pipe.hincrby(hour_key, field, amount)
            keys[minute_key], keys[hour_key] = MINUTE_TTL, HOUR_TTL
        for key, ttl in keys.items():
            pipe.expire(key, ttl)
        pipe.execute()

    def counts(
        self, slugs: Iterable[str], now: float | None = None
    ) -> dict[str, dict[str, Counts]]:
        """Counts per objective slug and per window name (every window in domain.slo.WINDOWS)."""
        self.flush(force=True)
        now = time.time() if now is None else now
        slugs = list(slugs)
        current_minute, current_hour = int(now // MINUTE), int(now // HOUR)
        longest_minutes = max(
            w.seconds for w in WINDOWS.values() if w.seconds <= MINUTE_RESOLUTION_LIMIT
        ) // MINUTE
        longest_hours = max(w.seconds for w in WINDOWS.values()) // HOUR
        minutes = [current_minute - i for i in range(longest_minutes)]
        hours = [current_hour - i for i in range(longest_hours)]
        pipe = self.connection.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(self._minute_key(minute))
        for hour in hours:
            pipe.hgetall(self._hour_key(hour))
        replies = pipe.execute()
        by_minute = dict(zip(minutes, replies[: len(minutes)], strict=True))
        by_hour = dict(zip(hours, replies[len(minutes) :], strict=True))
        result: dict[str, dict[str, Counts]] = {}
        for slug in slugs:
            result[slug] = {}
            for window in WINDOWS.values():
                if window.seconds <= MINUTE_RESOLUTION_LIMIT:
                    buckets = [by_minute[m] for m in minutes[: window.seconds // MINUTE]]
                else:
                    buckets = [by_hour[h] for h in hours[: window.seconds // HOUR]]
                result[slug][window.name] = _sum(buckets, slug)
        return result


def _add(counts: Counter[tuple[int, str]], minute: int, events: Iterable[tuple[str, bool]]) -> None:
    """Count (objective slug, is_bad) events of one minute into (minute, field) counts."""
    for slug, bad in events:
        counts[(minute, f"{slug}:total")] += 1
        if bad:
            counts[(minute, f"{slug}:bad")] += 1


def _sum(buckets: list[dict], slug: str) -> Counts:
    total = bad = 0
    total_field, bad_field = f"{slug}:total".encode(), f"{slug}:bad".encode()
    for bucket in buckets:
        total += int(bucket.get(total_field, 0))
        bad += int(bucket.get(bad_field, 0))
    return Counts(total=total, bad=bad)


class _Flusher:
    """One daemon thread per process flushing every watched SloBuckets each interval (and once
    more at exit); started lazily, and again in a forked child, which does not inherit threads."""

    def __init__(self) -> None:
        self._buckets: weakref.WeakSet[SloBuckets] = weakref.WeakSet()
        self._pid: int | None = None
        self._lock = threading.Lock()

    def watch(self, buckets: SloBuckets) -> None:
        pid = os.getpid()
        if buckets._watched_in == pid == self._pid:  # noqa: SLF001 - the flusher's own mark
            return
        with self._lock:
            self._buckets.add(buckets)
            buckets._watched_in = pid  # noqa: SLF001
            if self._pid != pid:
                self._pid = pid
                threading.Thread(target=self._run, name="slo-buckets", daemon=True).start()

    def flush_all(self) -> None:
        for buckets in list(self._buckets):
            try:
                buckets.flush()
            except Exception:  # noqa: BLE001 - a metrics hiccup must never kill the thread
                log.warning("SLO bucket flush failed", exc_info=True)

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL_SECONDS)
            self.flush_all()


_flusher = _Flusher()
atexit.register(_flusher.flush_all)
