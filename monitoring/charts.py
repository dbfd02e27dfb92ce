"""Bar charts as plain data for an SVG template: no JavaScript, no chart library.

Bars run across, one row per point, the label and the figure on a line above each
bar: the text stays one size whatever the label's length (a prison's stage in Welsh is
longer than in English), and the drawing is narrow, so on a phone the words are shown
at close to their own size rather than shrunk with a wide picture. The template puts
the same figures in a table beside the drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.formats import number_format

# Drawing units; the page scales the drawing to at most a phone's width (site.css),
# so one unit is about one CSS pixel on every screen.
WIDTH = 320
FONT_SIZE = 15
_TEXT_LINE = 19  # the label and figure line
_BAR = 14
_GAP = 12
ROW_HEIGHT = _TEXT_LINE + _BAR + _GAP


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    value_label: str  # the figure as the reader's language writes it: "90,412", "1.5"
    text_y: float  # baseline of the label and figure line
    y: float  # top of the bar
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    title: str
    label_heading: str  # the table's first column: "Week starting"
    value_heading: str  # the table's second column: "Calls"
    bars: list[Bar]
    width: int
    height: int
    max_value: float
    font_size: int


def format_figure(value: float) -> str:
    """A whole number with thousands grouped ("90,412"), else one decimal ("1,234.5"),
    with the separators of the active language."""
    if float(value).is_integer():
        return number_format(int(value), force_grouping=True)
    return number_format(round(value, 1), decimal_pos=1, force_grouping=True)


def bar_chart(
    title: str,
    points: list[tuple[str, float]],
    *,
    label_heading: str = "",
    value_heading: str = "",
    width: int = WIDTH,
) -> BarChart:
    """Horizontal bars scaled to the largest value (all zero: no bars, labels kept)."""
    largest = max((value for _, value in points), default=0) or 1
    bars = []
    for index, (label, value) in enumerate(points):
        top = index * ROW_HEIGHT
        bars.append(
            Bar(
                label=str(label),
                value=value,
                value_label=format_figure(value),
                text_y=top + FONT_SIZE,
                y=top + _TEXT_LINE,
                width=round(width * (value / largest), 1),
                height=_BAR,
            )
        )
    return BarChart(
        title=str(title),
        label_heading=str(label_heading),
        value_heading=str(value_heading),
        bars=bars,
        width=width,
        height=max(len(points), 1) * ROW_HEIGHT,
        max_value=largest,
        font_size=FONT_SIZE,
    )
