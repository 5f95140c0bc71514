"""Server-rendered SVG charts: no JavaScript, no CDN, nothing inline the CSP would refuse.

Colours are SVG presentation attributes (not `style=`), so `style-src 'self'` holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

STATUS_COLOURS = {
    "completed": "#1b8a4b",
    "processing": "#d69e2e",
    "pending": "#a0aec0",
    "failed": "#c23b32",
    "cancelled": "#6b7385",
}
WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 8, 10, 26


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000):
        if value <= step * 4:
            return step * 4
    return value * 1.1


def _fmt(value: float) -> str:
    return f"{value:.1f}" if 0 < value < 10 and value != int(value) else f"{value:,.0f}"


def _frame(title: str, y_max: float, unit: str) -> list[str]:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        y = PAD_TOP + plot_h * (1 - i / 4)
        label = _fmt(y_max * i / 4) + unit
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e3e6ec" stroke-width="1"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(label)}</text>"
        )
    return parts


def _x_labels(starts: Sequence[dt.datetime], slot: float, every: int) -> list[str]:
    parts = []
    for i, start in enumerate(starts):
        if i % every == 0:
            x = PAD_LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="axis">'
                f'{start.strftime("%H:%M")}</text>'
            )
    return parts


def stacked_bars(
    title: str,
    starts: Sequence[dt.datetime],
    series: dict[str, Sequence[float]],
    colours: dict[str, str] = STATUS_COLOURS,
    label_every: int = 3,
) -> Markup:
    """Bars per time bucket, one segment per series (orders by status)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(starts))]
    y_max = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(starts), 1)
    parts = _frame(title, y_max, "")
    for i, start in enumerate(starts):
        y = PAD_TOP + plot_h
        for name, values in series.items():
            h = plot_h * values[i] / y_max
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{PAD_LEFT + slot * i + slot * 0.12:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.76:.1f}" height="{h:.1f}" fill="{colours.get(name, "#888")}">'
                f"<title>{start:%H:%M} {escape(name)}: {_fmt(values[i])}</title></rect>"
            )
    parts += _x_labels(starts, slot, label_every)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def line_chart(
    title: str,
    starts: Sequence[dt.datetime],
    series: dict[str, Sequence[float]],
    colours: dict[str, str],
    unit: str = "",
    label_every: int = 3,
) -> Markup:
    """One polyline per series over time buckets (throughput, p95 latency)."""
    peak = max((max(v, default=0) for v in series.values()), default=0)
    y_max = _nice_max(peak)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(starts), 1)
    parts = _frame(title, y_max, unit)
    for name, values in series.items():
        points = " ".join(
            f"{PAD_LEFT + slot * (i + 0.5):.1f},{PAD_TOP + plot_h * (1 - v / y_max):.1f}"
            for i, v in enumerate(values)
        )
        colour = colours.get(name, "#2657d9")
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for i, v in enumerate(values):
            if v:
                parts.append(
                    f'<circle cx="{PAD_LEFT + slot * (i + 0.5):.1f}" '
                    f'cy="{PAD_TOP + plot_h * (1 - v / y_max):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{starts[i]:%H:%M} {escape(name)}: {_fmt(v)}{escape(unit)}</title>"
                    "</circle>"
                )
    parts += _x_labels(starts, slot, label_every)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def budget_bar(fraction_left: float | None) -> Markup:
    """A small horizontal bar: how much error budget is left (0..1)."""
    if fraction_left is None:
        return Markup('<span class="muted">n/a</span>')
    left = max(0.0, min(1.0, fraction_left))
    colour = "#1b8a4b" if left > 0.5 else "#d69e2e" if left > 0.2 else "#c23b32"
    return Markup(  # noqa: S704 - numbers only
        f'<svg class="budget" viewBox="0 0 100 10" role="img" aria-label="{left:.0%} left">'
        f'<rect width="100" height="10" fill="#e8ebf1"/>'
        f'<rect width="{left * 100:.1f}" height="10" fill="{colour}"/></svg>'
    )
