"""The national dashboard: figures written as people read them, charts readable on a
phone, each with its figures in a table beside it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from monitoring import selectors
from monitoring.charts import bar_chart, format_figure
from monitoring.selectors import NationalFigures, WeekFigures

pytestmark = pytest.mark.django_db

# A phone 320 CSS pixels wide, less the page's side padding.
PHONE_CONTENT_WIDTH = 288


def test_figures_are_grouped_and_whole_numbers_stay_whole() -> None:
    assert format_figure(90412) == "90,412"
    assert format_figure(45201.5) == "45,201.5"
    assert format_figure(3.0) == "3"
    assert format_figure(0) == "0"


def test_bars_run_across_scaled_to_the_largest() -> None:
    chart = bar_chart("Calls per week", [("3 Mar", 10), ("10 Mar", 5), ("17 Mar", 0)])
    widths = [bar.width for bar in chart.bars]
    assert widths == [chart.width, chart.width / 2, 0]
    # One row per point, the label line above each bar, nothing drawn past the bottom.
    assert all(bar.text_y < bar.y for bar in chart.bars)
    assert chart.bars[-1].y + chart.bars[-1].height <= chart.height
    assert [bar.value_label for bar in chart.bars] == ["10", "5", "0"]


def test_chart_text_is_readable_on_a_phone() -> None:
    # The old chart: 11-unit text in a 640-unit-wide drawing, about 5 px on a phone.
    chart = bar_chart("Calls per week", [("3 Mar", 10)])
    assert chart.font_size * PHONE_CONTENT_WIDTH / chart.width >= 12


def test_hours_pick_the_plural_form() -> None:
    def figures(hours: float) -> NationalFigures:
        return NationalFigures(
            calls=1,
            hours=hours,
            countries=[],
            pauses=0,
            face_pauses=0,
            terminations=0,
            stage_counts=[],
        )

    assert figures(1.0).hours_count == 1
    assert figures(1.5).hours_count != 1
    assert figures(2.0).hours_count == 2


def _fake_figures() -> NationalFigures:
    monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
    return NationalFigures(
        calls=90412,
        hours=45201.5,
        countries=[(f"C{i}", f"Country {i}", 100 - i) for i in range(31)],
        pauses=1204,
        face_pauses=1001,
        terminations=12,
        stage_counts=[("live", "Live", 101), ("test_calls", "Test calls", 9)],
        weeks=[
            WeekFigures(week=monday - timedelta(weeks=1), calls=7000, hours=3500.5),
            WeekFigures(week=monday, calls=7412, hours=3706.0),
        ],
    )


def test_national_page_reads_figures_right(client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(selectors, "national_figures", lambda **kwargs: _fake_figures())
    client.force_login(people.hq)
    content = client.get(reverse("monitoring:national")).content.decode()
    lead = re.search(r'<p class="lead">(.*?)</p>', content, re.S).group(1)
    assert "90,412 calls so far" in lead
    assert "45,201.5 hours of calls" in lead
    assert "with families in 31 countries" in lead
    assert "Over" not in lead
    assert "and 16 more countries." in content
    assert "<dd>1,204 (1,001)</dd>" in content
    # Each chart has its figures in a table beside it.
    assert content.count('class="chart-svg"') == 3
    assert content.count('<table class="chart-table">') == 3
    assert "<td>7,412</td>" in content and "<td>3,500.5</td>" in content
    assert '<th scope="col">Week starting</th>' in content


def test_national_page_with_no_calls_says_so(client, people) -> None:  # type: ignore[no-untyped-def]
    client.force_login(people.hq)
    content = client.get(reverse("monitoring:national")).content.decode()
    assert "No calls have been made yet." in content
    assert "Over 0" not in content and "0 calls" not in content


def test_national_page_in_welsh_names_the_weeks_in_welsh(client, people, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    figures = _fake_figures()
    monkeypatch.setattr(selectors, "national_figures", lambda **kwargs: figures)
    client.force_login(people.hq)
    content = client.get(reverse("monitoring:national"), HTTP_ACCEPT_LANGUAGE="cy").content.decode()
    week: date = figures.weeks[-1].week
    with translation.override("cy"):
        welsh = date_format(week, "j M")
    with translation.override("en-gb"):
        english = date_format(week, "j M")
    assert welsh != english
    assert f'<th scope="row">{welsh}</th>' in content
    assert f'<th scope="row">{english}</th>' not in content
