"""Security checks: security.txt, and the bandit gate of `make lint` (reviewed findings only)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def security_checks():
    spec = importlib.util.spec_from_file_location("security_checks",
                                                  ROOT / "scripts" / "security_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_security_txt_names_a_contact_and_a_future_expiry(sqlite_client):
    response = sqlite_client.get("/.well-known/security.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    fields = dict(line.split(": ", 1) for line in response.get_data(as_text=True).splitlines())
    assert fields["Contact"].startswith(("mailto:", "https://"))
    expires = dt.datetime.fromisoformat(fields["Expires"].replace("Z", "+00:00"))
    now = dt.datetime.now(dt.UTC)
    assert now < expires < now + dt.timedelta(days=366)
    assert fields["Canonical"].endswith("/.well-known/security.txt")


@pytest.mark.parametrize(
    ("line", "above", "is_reviewed"),
    [
        ('q = f"DELETE FROM {t}"  # noqa: S608 - our own table names', "", True),
        ('q = f"DELETE FROM {t}"  # nosec B608 - our own table names', "", True),
        ('q = f"DELETE FROM {t}"  # noqa: E501,S608 (constant)', "", True),
        ('q = f"DELETE FROM {t}"  # noqa: S608', "# Reviewed: only bound values vary", True),
        ('q = f"DELETE FROM {t}"  # noqa: S608', "x = 1", False),
        ('q = f"DELETE FROM {t}"  # noqa: S105 - unrelated code', "", False),
        ('q = f"DELETE FROM {t}"', "# a comment", False),
    ],
)
def test_a_bandit_finding_counts_as_reviewed_only_with_its_code_and_a_reason(line, above,
                                                                            is_reviewed):
    assert security_checks().reviewed(line, "B608", above) is is_reviewed


def test_the_code_base_has_no_unreviewed_medium_or_high_bandit_finding(capsys):
    assert security_checks().run_bandit(), capsys.readouterr().out
