"""Server-rendered SVG charts: no JavaScript, nothing fetched, every label escaped (format_html).

Two shapes cover the pages: a line chart of several daily series and a horizontal bar chart. Each
chart carries a <title> and an aria-label, and the page shows the same numbers as a table (and CSV).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569")
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 640, 220, 44, 12, 12, 28


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


def line_chart(
    title: str, days: Sequence[dt.date], series: dict[str, Sequence[float | None]], *, percent: bool = False
) -> SafeString:
    """Daily series as lines (gaps where a value is None); a legend under the chart."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = 1.0 if percent else _nice_max(max(values, default=0))
    n = max(1, len(days) - 1)
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + plot_w * i / n

    def y(v: float) -> float:
        return PAD_T + plot_h * (1 - v / top)

    parts = []
    for k in range(5):
        v = top * k / 4
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/><text x="{}" y="{}" class="axis" '
                'text-anchor="end">{}</text>',
                PAD_L,
                WIDTH - PAD_R,
                round(y(v), 1),
                round(y(v), 1),
                PAD_L - 4,
                round(y(v) + 4, 1),
                _fmt(v, percent),
            )
        )
    if days:
        for i in sorted({0, len(days) // 2, len(days) - 1}):
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
                    round(x(i), 1),
                    HEIGHT - 8,
                    days[i].strftime("%d %b"),
                )
            )
    for color, (name, vs) in zip(PALETTE * 3, series.items(), strict=False):
        segments, current = [], []
        for i, v in enumerate(vs):
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{x(i):.1f},{y(v):.1f}")
        if current:
            segments.append(current)
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(format_html('<circle cx="{}" cy="{}" r="2" fill="{}"/>', cx, cy, color))
            else:
                parts.append(
                    format_html(
                        '<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"><title>{}</title></polyline>',
                        " ".join(segment),
                        color,
                        name,
                    )
                )
    legend = format_html_join(
        "",
        '<li><span class="swatch" style="background:{}"></span>{}</li>',
        ((color, name) for color, name in zip(PALETTE * 3, series, strict=False)),
    )
    return format_html(
        '<figure class="chart"><h3>{}</h3><svg viewBox="0 0 {} {}" role="img" aria-label="{}" class="chart-line">'
        '<title>{}</title>{}</svg><figcaption><ul class="legend">{}</ul></figcaption></figure>',
        title,
        WIDTH,
        HEIGHT,
        title,
        title,
        mark_safe("".join(parts)),  # noqa: S308 — every part above was built with format_html
        legend,
    )


def bar_chart(title: str, rows: Sequence[tuple[str, float | None]], *, percent: bool = False) -> SafeString:
    """Horizontal bars, one per (label, value), the value written at the bar's end."""
    bar_h, gap, label_w = 18, 6, 230
    height = max(1, len(rows)) * (bar_h + gap) + gap
    top = 1.0 if percent else _nice_max(max((v or 0 for _, v in rows), default=0))
    plot_w = WIDTH - label_w - 60
    parts = []
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = 0 if value is None else plot_w * value / top
        parts.append(
            format_html(
                '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                '<text x="{}" y="{}" class="value">{}</text>',
                label_w - 6,
                y + bar_h - 5,
                label if len(label) <= 38 else label[:37] + "…",
                label_w,
                y,
                round(w, 1),
                bar_h,
                PALETTE[0],
                label,
                "—" if value is None else _fmt(value, percent),
                round(label_w + w + 4, 1),
                y + bar_h - 5,
                "—" if value is None else _fmt(value, percent),
            )
        )
    return format_html(
        '<figure class="chart"><h3>{}</h3><svg viewBox="0 0 {} {}" role="img" aria-label="{}" class="chart-bar">'
        "<title>{}</title>{}</svg></figure>",
        title,
        WIDTH,
        height,
        title,
        title,
        mark_safe("".join(parts)),  # noqa: S308 — every part above was built with format_html
    )
