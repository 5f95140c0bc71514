"""Runbook steps and the plain-text form staff edit them in.

One step per `## Title` heading; under it, lines starting with `$ ` are the command to copy,
one line `-> /path Label` links to the dashboard page the step needs, anything else is the step's
Markdown text. `parse_steps(format_steps(steps)) == steps` whenever no body line itself starts
with `## `, `$ ` or `-> `.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.errors import FieldError, ValidationFailed

MAX_STEPS = 40
NO_STEPS = "a runbook needs at least one '## Step'"
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class StepSpec:
    """One step as written: what to do, the command to run, the dashboard page it needs."""

    title: str
    body: str = ""
    command: str | None = None
    link_path: str | None = None
    link_label: str | None = None


def check_slug(slug: str) -> str:
    """A runbook slug: lower-case words joined by '-', at most 80 characters."""
    slug = (slug or "").strip()
    if not _SLUG.match(slug) or len(slug) > 80:
        raise ValidationFailed(
            [FieldError("slug", "lower-case letters, digits and '-' only, like redis-down")]
        )
    return slug


def _valid_link(target: str) -> bool:
    # Local dashboard paths, or a web page; never a scheme a browser would run.
    return (target.startswith("/") and not target.startswith("//")) or target.startswith(
        ("https://", "http://")
    )


def format_steps(steps: list[StepSpec]) -> str:
    """The steps as the editable text."""
    blocks = []
    for step in steps:
        lines = [f"## {step.title}"]
        if step.body:
            lines.append(step.body)
        if step.command:
            lines.extend(f"$ {line}" for line in step.command.splitlines())
        if step.link_path:
            lines.append(f"-> {step.link_path} {step.link_label or ''}".rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def parse_steps(text: str) -> list[StepSpec]:
    """Steps from the editable text; ValidationFailed names the line that is wrong.

    Only a str is steps text: anything else (None, a runbook's list of step rows) is refused as a
    field error rather than read as something it is not."""
    if not isinstance(text, str):
        raise ValidationFailed([FieldError("steps", "must be text, one '## Step title' per step")])
    steps: list[dict] = []
    errors: list[FieldError] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        line = raw.rstrip()
        if line.startswith("## "):
            steps.append({"title": line[3:].strip(), "body": [], "command": [], "link": None})
            continue
        if not steps:
            if line.strip():
                errors.append(FieldError("steps", f"line {number}: start with '## Step title'"))
            continue
        step = steps[-1]
        if line.startswith("$ "):
            step["command"].append(line[2:])
        elif line.startswith("-> "):
            target, _, label = line[3:].strip().partition(" ")
            if step["link"] or not _valid_link(target):
                errors.append(
                    FieldError("steps", f"line {number}: one link per step, to /a/path or https://")
                )
            step["link"] = (target, label.strip() or None)
        else:
            step["body"].append(line)
    if not steps and not errors:
        errors.append(FieldError("steps", NO_STEPS))
    if len(steps) > MAX_STEPS:
        errors.append(FieldError("steps", f"at most {MAX_STEPS} steps"))
    for step in steps:
        if not step["title"] or len(step["title"]) > 200:
            errors.append(FieldError("steps", "every step needs a title of at most 200 characters"))
            break
    if errors:
        raise ValidationFailed(errors)
    return [
        StepSpec(
            title=s["title"],
            body="\n".join(s["body"]).strip(),
            command="\n".join(s["command"]) or None,
            link_path=s["link"][0] if s["link"] else None,
            link_label=s["link"][1] if s["link"] else None,
        )
        for s in steps
    ]
