"""What /queues shows of a failed job's traceback: the exception, never a file path."""

from __future__ import annotations

import traceback

import psycopg
import sqlalchemy.exc

from app.infra.queue_admin import ERROR_SUMMARY_CHARS, error_summary

REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection '
    "refused\n\tIs the server running on that host and accepting TCP/IP connections?"
)


def _traceback_of(raise_it) -> str:
    """The text RQ stores for a job that raised: every chained traceback, frames included."""
    try:
        raise_it()
    except Exception as exc:  # noqa: BLE001 - formatting whatever it was
        return "".join(traceback.format_exception(exc))
    raise AssertionError("did not raise")


def _database_refused(statement: str | None = None, params: dict | None = None):
    def connect():
        raise psycopg.OperationalError(REFUSED)

    def run():
        try:
            connect()
        except psycopg.OperationalError as exc:
            raise sqlalchemy.exc.OperationalError(statement, params, exc) from exc

    return run


def test_a_database_error_shows_its_type_and_message_not_sqlalchemys_background_link():
    text = _traceback_of(_database_refused())
    assert text.strip().splitlines()[-1].startswith("(Background on this error at:")  # the bug

    summary = error_summary(text)

    assert summary == (
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) connection failed: "
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused '
        "Is the server running on that host and accepting TCP/IP connections?"
    )


def test_the_summary_has_no_file_paths_statement_or_parameters():
    text = _traceback_of(
        _database_refused("SELECT * FROM orders WHERE email = %(email)s", {"email": "a@b.example"})
    )
    assert 'File "' in text and "[parameters:" in text

    summary = error_summary(text)

    assert summary.startswith("sqlalchemy.exc.OperationalError: (psycopg.OperationalError)")
    for hidden in ('File "', ".py", "[SQL:", "[parameters:", "a@b.example", "sqlalche.me"):
        assert hidden not in summary, hidden


def test_a_plain_exception_is_its_last_line_and_a_long_message_is_cut():
    assert error_summary(_traceback_of(lambda: int("not a number"))) == (
        "ValueError: invalid literal for int() with base 10: 'not a number'"
    )

    def too_long():
        raise RuntimeError("x" * 5000)

    summary = error_summary(_traceback_of(too_long))
    assert summary.startswith("RuntimeError: xxx") and summary.endswith("…")
    assert len(summary) == ERROR_SUMMARY_CHARS


def test_text_that_is_no_traceback_is_kept_as_it_is():
    note = "Moved to FailedJobRegistry, due to AbandonedJobError, at 2026-11-27 09:00:00"
    assert error_summary(note) == note
    assert error_summary("") == error_summary(None) == "(no error recorded)"
