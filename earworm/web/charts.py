"""Charts as server-rendered SVG: no JavaScript, no CDN (DESIGN.md §2).

Colours come from CSS classes, so charts follow the page's light or dark scheme. Every chart has a
<title> and an aria-label that says what it shows; every bar has a <title> with its exact figure.
"""

import math
from collections.abc import Sequence
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SERIES_CLASSES = ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]


def format_duration(ms: int) -> str:
    """Listening time as people say it: '42 min', '3 h 05 min', '12 days 4 h'."""
    minutes = int(ms // 60_000)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days:,} days {hours} h"


def _nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `maximum`."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum:
        ticks.append(ticks[-1] + step)
    return ticks


def _fmt_tick(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _label_for(day: date, bucket: str) -> str:
    if bucket == "month":
        return day.strftime("%b ’%y")
    if bucket == "year":
        return str(day.year)
    return f"{day.day} {day:%b}"


def _x_label_indices(n: int, bucket: str, starts: Sequence[date], slots: int = 8) -> list[int]:
    if n == 0:
        return []
    if bucket == "month" and n > 24:
        return [i for i, d in enumerate(starts) if d.month == 1]
    step = max(1, math.ceil(n / slots))
    return list(range(0, n, step))


def bar_chart_svg(
    *,
    starts: Sequence[date],
    series: Sequence[Sequence[float]],
    series_names: Sequence[str],
    bucket: str,
    unit: str,
    title: str,
    width: int = 760,
    height: int = 240,
) -> SafeString:
    """Vertical (stacked, with several series) bars over time with labelled axes.

    `series[k][i]` is the value of series k in period i, in `unit` (shown on the y axis).
    """
    left, right, top, bottom = 52, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(starts)
    totals = [sum(s[i] for s in series) for i in range(n)]
    ticks = _nice_ticks(max(totals, default=0))
    top_value = ticks[-1] or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>'
    ]
    for tick in ticks:
        y = top + plot_h - plot_h * tick / top_value
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_tick(tick)}</text>')
    parts.append(
        f'<text class="axis-title" x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{escape(unit)}</text>'
    )
    if n:
        slot = plot_w / n
        bar_w = max(1.0, slot * (0.72 if n < 60 else 0.86))
        for i, start in enumerate(starts):
            x = left + i * slot + (slot - bar_w) / 2
            base = float(top + plot_h)
            label = _label_for(start, bucket)
            for k, values in enumerate(series):
                value = values[i]
                if value <= 0:
                    continue
                h = plot_h * value / top_value
                base -= h
                name = f"{series_names[k]}: " if len(series) > 1 else ""
                parts.append(
                    f'<rect class="col {SERIES_CLASSES[k % len(SERIES_CLASSES)]}" x="{x:.1f}" y="{base:.1f}" '
                    f'width="{bar_w:.1f}" height="{h:.1f}" rx="1.5"><title>{escape(label)} — {escape(name)}'
                    f"{_fmt_tick(value)} {escape(unit)}</title></rect>"
                )
        for i in _x_label_indices(n, bucket, starts):
            x = left + i * slot + slot / 2
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
                f"{escape(_label_for(starts[i], bucket))}</text>"
            )
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></svg>')
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def heatmap_svg(*, grid: Sequence[Sequence[int]], title: str) -> SafeString:
    """Weekday (rows, Monday first) × hour of day (columns) with a shade per cell and a legend."""
    cell, gap, left, top = 26, 3, 40, 22
    width = left + 24 * cell + 8
    height = top + 7 * cell + 34
    peak = max((max(row) for row in grid), default=0) or 1
    parts = [
        f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    ]
    for hour in range(0, 24, 3):
        x = left + hour * cell + cell / 2
        parts.append(f'<text class="tick" x="{x:.0f}" y="{top - 8}" text-anchor="middle">{hour:02d}:00</text>')
    for day, row in enumerate(grid):
        y = top + day * cell
        parts.append(
            f'<text class="tick" x="{left - 8}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">{WEEKDAYS[day]}</text>'
        )
        for hour, plays in enumerate(row):
            level = plays / peak
            opacity = 0.06 if plays == 0 else 0.18 + 0.82 * level
            parts.append(
                f'<rect class="cell" x="{left + hour * cell}" y="{y}" width="{cell - gap}" height="{cell - gap}" '
                f'rx="3" fill-opacity="{opacity:.2f}"><title>{WEEKDAYS[day]} {hour:02d}:00–{hour:02d}:59: '
                f"{plays:,} plays</title></rect>"
            )
    legend_y = top + 7 * cell + 14
    parts.append(f'<text class="tick" x="{left}" y="{legend_y + 10}">fewer</text>')
    for i, opacity in enumerate((0.06, 0.3, 0.55, 0.8, 1.0)):
        parts.append(
            f'<rect class="cell" x="{left + 44 + i * 16}" y="{legend_y}" width="13" height="13" rx="2" '
            f'fill-opacity="{opacity}"/>'
        )
    parts.append(f'<text class="tick" x="{left + 44 + 5 * 16 + 4}" y="{legend_y + 10}">more plays</text></svg>')
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
