"""Line and point plots as SVG text, for the live sliders.

matplotlib takes 100-300 ms to draw and encode a two-panel PNG on a 2-core CPU, which is
more than the whole budget of a slider move; the same plot as SVG text is built in well
under a millisecond and the browser draws it. Only what the sliders need: panels with
linear or log y axes, lines (broken at non-finite values), points and a note.
"""

from __future__ import annotations

import html
import math
from typing import NamedTuple

import numpy as np

_COLORS = {"data": "#555555", "fit": "#ff7f0e", "batch": "#1f77b4", "epoch": "#d62728"}


class Series(NamedTuple):
    """One thing drawn in a panel."""

    x: np.ndarray  # shape=(m,): horizontal positions.
    y: np.ndarray  # shape=(m,): vertical positions; non-finite values leave gaps.
    kind: str  # "line" or "points".
    color: str  # a key of _COLORS or a CSS color.
    label: str  # the legend's text ("" for none).


class Panel(NamedTuple):
    """One set of axes."""

    series: tuple  # Series drawn in order.
    xlim: tuple  # (low, high) of the x axis.
    ylim: tuple  # (low, high) of the y axis; positive when `log_y`.
    title: str  # above the panel.
    xlabel: str  # below the panel.
    log_y: bool = False  # a logarithmic y axis.
    note: str = ""  # bold red text in the lower right corner (e.g. "diverged at epoch 3").


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        first, last = math.ceil(math.log10(low)), math.floor(math.log10(high))
        every = max(1, math.ceil((last - first + 1) / 6))  # at most about six labels
        return [10.0**k for k in range(first, last + 1, every)] or [low, high]
    raw = (high - low) / 4
    step = 10 ** math.floor(math.log10(raw))
    step *= next(f for f in (1, 2, 5, 10) if raw <= f * step)
    return list(np.arange(math.ceil(low / step) * step, high + 1e-9 * step, step))


def _fmt(value: float, log: bool) -> str:
    return f"1e{round(math.log10(value))}" if log else f"{value:g}"


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    """SVG path data for a line, broken wherever a point is not finite."""
    parts, pen_down = [], False
    for x, y in zip(xs, ys, strict=True):
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
        pen_down = True
    return "".join(parts)


def _panel(panel: Panel, left: float, top: float, width: float, height: float) -> list[str]:
    (x0, x1), (y0, y1) = panel.xlim, panel.ylim
    fy = np.log10 if panel.log_y else (lambda v: v)
    Y0, Y1 = fy(y0), fy(y1)

    def px(x):
        return left + (np.asarray(x, float) - x0) / (x1 - x0) * width

    def py(y):
        with np.errstate(divide="ignore", invalid="ignore"):
            v = fy(np.asarray(y, float))
        return top + height - (v - Y0) / (Y1 - Y0) * height

    out = [
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>'
    ]
    for t in _ticks(x0, x1, False):
        out.append(
            f'<text x="{px(t):.1f}" y="{top + height + 14}" text-anchor="middle">{t:g}</text>'
        )
    for t in _ticks(y0, y1, panel.log_y):
        out.append(f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">'
                   f"{_fmt(t, panel.log_y)}</text>")  # fmt: skip
    out.append(f'<text x="{left + width / 2}" y="{top - 6}" text-anchor="middle" '
               f'font-weight="bold">{html.escape(panel.title)}</text>')  # fmt: skip
    out.append(f'<text x="{left + width / 2}" y="{top + height + 28}" '
               f'text-anchor="middle">{html.escape(panel.xlabel)}</text>')  # fmt: skip
    out.append(
        f'<svg x="{left}" y="{top}" width="{width}" height="{height}" '
        f'viewBox="{left} {top} {width} {height}">'
    )  # fmt: skip  (clips to the axes)
    for s in panel.series:
        color = _COLORS.get(s.color, s.color)
        xs, ys = px(s.x), py(s.y)
        if s.kind == "points":
            ok = np.isfinite(xs) & np.isfinite(ys)
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                    for x, y in zip(xs[ok], ys[ok], strict=True)]  # fmt: skip
        else:
            out.append(
                f'<path d="{_path(xs, ys)}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            )
    out.append("</svg>")
    labels = [s for s in panel.series if s.label]
    for i, s in enumerate(labels):
        out.append(f'<text x="{left + width - 6}" y="{top + 14 + 13 * i}" text-anchor="end" '
                   f'fill="{_COLORS.get(s.color, s.color)}">{html.escape(s.label)}</text>')  # fmt: skip
    if panel.note:
        out.append(f'<text class="note" x="{left + width - 8}" y="{top + height - 8}" text-anchor="end" fill="#d62728" '
                   f'font-weight="bold" font-size="15">{html.escape(panel.note)}</text>')  # fmt: skip
    return out


def figure(panels: list[Panel], *, width: int = 340, height: int = 210) -> str:
    """Panels side by side as one `<svg>` element; each panel is `width` x `height` pixels.

    Examples:
      >>> p = Panel((Series(np.array([0.0, 1.0]), np.array([1.0, 2.0]), "line", "fit", "f"),),
      ...           (0, 1), (0, 2), "a line", "x", note="hello")
      >>> svg = figure([p])
      >>> svg.startswith("<svg") and "M" in svg and "hello" in svg
      True
    """
    margin_l, margin_t, margin_b, gap = 48, 22, 36, 20
    total_w = len(panels) * (margin_l + width) + (len(panels) - 1) * gap + 10
    total_h = margin_t + height + margin_b
    body = []
    for i, panel in enumerate(panels):
        body += _panel(panel, margin_l + i * (margin_l + width + gap), margin_t, width, height)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
            f'font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>")  # fmt: skip
