"""The SVG charts escape every label and value they are given (labels come from data: categories,
department names, escalation reasons)."""

from __future__ import annotations

import datetime as dt

from analytics import charts

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_line_chart_escapes_series_names_and_title():
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(3)]
    html = str(charts.line_chart(EVIL, days, {EVIL: [1, None, 3]}))
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert html.count("<svg") == 1


def test_bar_chart_escapes_labels_and_handles_no_values():
    html = str(charts.bar_chart("Reasons", [(EVIL, 3), ("none", None)]))
    assert "<script>" not in html
    assert "<img" not in html
    assert "—" in html
