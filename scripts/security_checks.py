"""`make lint`'s security checks: bandit (no unreviewed medium/high finding) and pip-audit.

A bandit finding counts as reviewed when its line carries the matching ruff annotation with a
reason, e.g. `# noqa: S608 - our own table names` (ruff's S rules are bandit's, so one reviewed
annotation serves both tools), or `# nosec B608 - reason`. A bare annotation without a reason does
not count. pip-audit needs PyPI's advisory data; when that cannot be reached (an offline build) it
is skipped with the reason printed, never silently.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCANNED = ["app", "worker", "scripts", "config.py", "wsgi.py", "gunicorn.conf.py"]
# pip-audit asks PyPI's JSON API per release, like this; a mirror without it answers 404.
ADVISORY_PROBE = "https://pypi.org/pypi/flask/3.1.3/json"


def reviewed(line: str, test_id: str, line_above: str = "") -> bool:
    """True when the line annotates this finding (ruff S<nnn> or bandit B<nnn>) with a reason:
    on the same line after the code, or as a comment on the line above."""
    number = test_id[1:]
    for match in re.finditer(r"#\s*(?:noqa:|nosec)\s*([A-Z0-9, ]+?)\s*(?:[-(]\s*(\S.*))?$", line):
        codes = {c.strip() for c in match.group(1).split(",")}
        if {f"S{number}", f"B{number}"} & codes:
            return bool(match.group(2)) or line_above.strip().startswith("#")
    return False


def unreviewed_findings(results: list[dict]) -> list[dict]:
    """Medium and high findings whose lines carry no reviewed annotation."""
    open_findings = []
    for result in results:
        if result["issue_severity"] not in ("MEDIUM", "HIGH"):
            continue
        lines = Path(result["filename"]).read_text().splitlines()
        span = result.get("line_range") or [result["line_number"]]
        # The annotation sits on the flagged line or on the statement's first/last line.
        candidates = {result["line_number"], min(span), max(span)}
        if not any(reviewed(lines[n - 1], result["test_id"], lines[n - 2] if n > 1 else "")
                   for n in candidates if 0 < n <= len(lines)):
            open_findings.append(result)
    return open_findings


def run_bandit() -> bool:
    completed = subprocess.run(  # noqa: S603 - our own tool with a fixed argv
        [str(BIN / "bandit"), "-q", "-r", *SCANNED, "-f", "json", "--severity-level", "medium"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        print("bandit: could not run\n" + completed.stderr[-2000:])
        return False
    findings = unreviewed_findings(report.get("results", []))
    for f in findings:
        print(f"bandit: {f['filename']}:{f['line_number']}: {f['test_id']} "
              f"[{f['issue_severity']}] {f['issue_text']}")
    total = len(report.get("results", []))
    print(f"bandit: {total} medium/high findings, {total - len(findings)} reviewed, "
          f"{len(findings)} unreviewed")
    return not findings


def advisory_service_unreachable() -> str | None:
    """Why pip-audit cannot work here, or None when PyPI's advisory data answers."""
    try:
        with urllib.request.urlopen(ADVISORY_PROBE, timeout=5) as response:  # noqa: S310 - fixed https URL
            if "vulnerabilities" not in json.load(response):
                return "PyPI answered without advisory data (a mirror?)"
    except urllib.error.HTTPError as exc:
        return f"PyPI's JSON API answered HTTP {exc.code} (an offline mirror?)"
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return f"PyPI is unreachable ({type(exc).__name__})"
    return None


def run_pip_audit() -> bool:
    reason = advisory_service_unreachable()
    if reason:
        print(f"pip-audit: SKIPPED - the advisory service cannot be reached: {reason}")
        return True
    completed = subprocess.run(  # noqa: S603 - our own tool with a fixed argv
        [str(BIN / "pip-audit"), "--progress-spinner", "off", "--skip-editable"],
        cwd=ROOT, check=False,
    )
    return completed.returncode == 0


def main() -> int:
    ok = run_bandit()
    ok = run_pip_audit() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
