"""Line charts as hand-written SVG: no plotting library, nothing fetched, text a browser
draws itself. One chart holds one or more series over the training step; a series may be
drawn twice, raw (faint) and smoothed (solid).

    line_chart([Series("loss_g", steps, values)], title="phase g", smooth=True) -> "<svg ...>"
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 30, 34
_ids = itertools.count(1)  # each chart's clip path needs an id of its own in the page


@dataclass
class Series:
    name: str
    steps: Sequence[int]  # lists, or tuples (line_chart keeps the finite points)
    values: Sequence[float]


def smoothed(values: Sequence[float], weight: float | None = None) -> list[float]:
    """The debiased exponential moving average TensorBoard draws; ``weight`` None: chosen
    from the number of points (0 for a handful, up to 0.95 for thousands)."""
    if weight is None:
        weight = min(0.95, max(0.0, 1 - 5 / max(len(values), 1)))
    out, mean, norm = [], 0.0, 0.0
    for v in values:
        mean = weight * mean + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(mean / norm)
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [i * step for i in range(first, last + 1)]


def value_range(series: Iterable[Series], clip: bool = True) -> tuple[float, float]:
    """(low, high) of the y axis: the values' range, without the extreme 1% at either end
    when there are many points (a loss spike of the first steps would flatten the rest)."""
    values = sorted(v for s in series for v in s.values if math.isfinite(v))
    if not values:
        return 0.0, 1.0
    if clip and len(values) >= 50:
        cut = len(values) // 100
        values = values[cut:len(values) - cut]
    low, high = values[0], values[-1]
    if high == low:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def fmt(value: float) -> str:
    """A tick label: up to 3 significant digits."""
    return f"{value:.3g}"


def line_chart(series: Iterable[Series], title: str, smooth: bool = False, width: int = WIDTH, height: int = HEIGHT,
               y_label: str = "") -> str:
    """An <svg> element: each series as a line over the step (with ``smooth``: the raw values
    faint and their moving average solid; a single value is a dot), axes with round ticks, a
    legend when there are several series. Values that are not finite are left out."""
    series = [Series(s.name, *zip(*[(x, y) for x, y in zip(s.steps, s.values) if math.isfinite(y)]))
              for s in series if any(math.isfinite(y) for y in s.values)]
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{LEFT}" y="18" class="chart-title">{escape(title)}</text>']
    if not series:
        parts.append(f'<text x="{LEFT}" y="{height // 2}" class="chart-empty">no values logged</text></svg>')
        return "".join(parts)
    x_low = min(min(s.steps) for s in series)
    x_high = max(max(s.steps) for s in series)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    y_low, y_high = value_range(series)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return TOP + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    for t in nice_ticks(y_low, y_high):
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" class="tick" text-anchor="end">{fmt(t)}</text>')
    for t in nice_ticks(x_low, x_high, 6):
        if t == int(t):
            parts.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" y2="{TOP + plot_h}" class="grid"/>'
                         f'<text x="{px(t):.1f}" y="{height - BOTTOM + 16}" class="tick" '
                         f'text-anchor="middle">{int(t):,}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{height - 4}" class="axis" text-anchor="middle">step</text>')
    if y_label:
        parts.append(f'<text x="12" y="{TOP + plot_h / 2:.0f}" class="axis" text-anchor="middle" '
                     f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>')
    clip = f"plot{next(_ids)}"
    parts.append(f'<defs><clipPath id="{clip}"><rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>'
                 f'</clipPath></defs><g clip-path="url(#{clip})">')
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        lines = [(s.values, 0.3 if smooth and len(s.values) > 1 else 1.0)]
        if smooth and len(s.values) > 1:
            lines.append((smoothed(list(s.values)), 1.0))
        for values, opacity in lines:
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(s.steps, values))
            if len(s.values) == 1:
                parts.append(f'<circle cx="{px(s.steps[0]):.1f}" cy="{py(values[0]):.1f}" r="3" fill="{colour}"/>')
            else:
                parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5" '
                             f'stroke-opacity="{opacity}"><title>{escape(s.name)}</title></polyline>')
    parts.append('</g>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    if len(series) > 1:
        x = LEFT + plot_w
        for i, s in reversed(list(enumerate(series))):
            label = s.name
            x -= 7 * len(label) + 22
            parts.append(f'<rect x="{x:.0f}" y="9" width="12" height="3" fill="{COLOURS[i % len(COLOURS)]}"/>'
                         f'<text x="{x + 16:.0f}" y="14" class="legend">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
