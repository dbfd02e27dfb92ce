"""Bar charts as plain data for an SVG template: no JavaScript, no chart library."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    title: str
    unit: str
    bars: list[Bar]
    width: int
    height: int
    max_value: float
    baseline: float


def bar_chart(
    title: str,
    points: list[tuple[str, float]],
    *,
    unit: str = "",
    width: int = 640,
    height: int = 220,
) -> BarChart:
    """Vertical bars scaled to the largest value; labels go under each bar."""
    top, bottom = 20.0, 40.0
    plot_height = height - top - bottom
    largest = max((value for _, value in points), default=0) or 1
    slot = width / max(len(points), 1)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = plot_height * (value / largest)
        bars.append(
            Bar(
                label=label,
                value=value,
                x=round(index * slot + slot * 0.15, 1),
                y=round(top + plot_height - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
            )
        )
    return BarChart(
        title=title,
        unit=unit,
        bars=bars,
        width=width,
        height=height,
        max_value=largest,
        baseline=top + plot_height,
    )
