from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eo4dm_helpers.dekads import (
    Dekad,
    DekadError,
    dekad_of,
    dekad_range,
    latest_complete_dekad,
    local_date,
    widened_window,
)


@pytest.mark.parametrize(
    ("label", "start", "end", "ndays"),
    [
        ("2026-11-D1", date(2026, 11, 1), date(2026, 11, 10), 10),
        ("2026-11-D2", date(2026, 11, 11), date(2026, 11, 20), 10),
        ("2026-11-D3", date(2026, 11, 21), date(2026, 11, 30), 10),
        ("2026-12-D3", date(2026, 12, 21), date(2026, 12, 31), 11),
        ("2023-02-D3", date(2023, 2, 21), date(2023, 2, 28), 8),
        ("2024-02-D3", date(2024, 2, 21), date(2024, 2, 29), 9),  # leap year
        ("2000-02-D3", date(2000, 2, 21), date(2000, 2, 29), 9),  # divisible by 400: leap
        ("2100-02-D3", date(2100, 2, 21), date(2100, 2, 28), 8),  # divisible by 100: not leap
    ],
)
def test_bounds_and_length(label, start, end, ndays):
    d = Dekad.parse(label)
    assert (d.start, d.end, d.ndays) == (start, end, ndays)
    assert d.label == label
    assert len(d.days) == ndays


@pytest.mark.parametrize("bad", ["2026-13-D1", "2026-00-D2", "2026-11-D4", "2026-11-D0", "2026-11", "26-11-D1",
                                 "2026-11-d2", "", "2026-1-D1"])
def test_bad_labels_are_refused_with_the_label_in_the_message(bad):
    with pytest.raises(DekadError, match="2026|YYYY|dekad"):
        Dekad.parse(bad)


def test_shift_across_month_and_year_boundaries():
    assert Dekad.parse("2025-12-D3").next() == Dekad(2026, 1, 1)
    assert Dekad.parse("2026-01-D1").previous() == Dekad(2025, 12, 3)
    assert Dekad.parse("2024-02-D3").next() == Dekad(2024, 3, 1)
    assert Dekad.parse("2024-03-D2").shift(-36) == Dekad(2023, 3, 2)


def test_range_is_inclusive_and_ordered():
    r = dekad_range(Dekad(2023, 12, 2), Dekad(2024, 1, 2))
    assert [d.label for d in r] == ["2023-12-D2", "2023-12-D3", "2024-01-D1", "2024-01-D2"]
    assert dekad_range(Dekad(2024, 1, 2), Dekad(2023, 12, 2)) == []


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 23), "2026-11-D2"),
        (date(2026, 11, 21), "2026-11-D2"),  # D3 just started: D2 is the last complete one
        (date(2026, 11, 20), "2026-11-D1"),  # D2 still running on its last day
        (date(2026, 1, 5), "2025-12-D3"),
        (date(2024, 3, 1), "2024-02-D3"),
    ],
)
def test_latest_complete_dekad(today, expected):
    assert latest_complete_dekad(today).label == expected


def test_new_caledonia_scene_late_utc_belongs_to_next_local_day():
    # A scene stamped 23:30 UTC on the 10th is 10:30 on the 11th in Noumea (UTC+11): dekad D2.
    t = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)
    assert local_date(t, "Pacific/Noumea") == date(2026, 11, 11)
    assert dekad_of(t, "Pacific/Noumea").label == "2026-11-D2"
    assert dekad_of(t, "UTC").label == "2026-11-D1"  # EO4DM's UTC binning
    assert local_date(datetime(2026, 11, 10, 23, 30), "Pacific/Noumea") == date(2026, 11, 11)  # naive = UTC


def test_utc_bounds_in_local_time():
    lo, hi = Dekad.parse("2024-03-D2").utc_bounds("Pacific/Noumea")
    assert lo == datetime(2024, 3, 10, 13, 0, tzinfo=UTC)
    assert hi == datetime(2024, 3, 20, 13, 0, tzinfo=UTC)
    lo, hi = Dekad.parse("2024-02-D3").utc_bounds("UTC")
    assert (lo.day, hi.month, hi.day) == (21, 3, 1)


def test_widened_windows():
    d = Dekad.parse("2024-03-D1")
    assert widened_window(d, "e") == (date(2024, 2, 25), date(2024, 3, 15))
    assert widened_window(d, "m") == (date(2024, 2, 20), date(2024, 3, 20))
    assert widened_window(d, "M") == (date(2024, 3, 1), date(2024, 3, 31))
    with pytest.raises(DekadError):
        widened_window(d, "x")


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)))
def test_every_day_is_in_exactly_one_dekad(day):
    d = Dekad.containing(day)
    assert d.start <= day <= d.end
    assert (d.next().start - d.end).days == 1
    assert Dekad.parse(d.label) == d
