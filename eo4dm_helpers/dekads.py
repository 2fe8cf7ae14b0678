"""Dekad arithmetic: D1 = days 1-10, D2 = 11-20, D3 = 21 to month end (DOMAIN.md §1.5, §3.1).

A dekad is labelled ``YYYY-MM-Dn`` (e.g. ``2026-11-D2``). Scenes (Sentinel-2, Landsat) are binned by
the territory's *local* calendar date (DOMAIN.md §3.4: New Caledonia is UTC+11, so a scene stamped
23:30 UTC on the 10th belongs to the 11th); daily MODIS/VIIRS products by their product day, the UTC
day of their 00:00 UTC stamp, in every time zone (DOMAIN.md §3.4). ``binning="utc"`` reproduces EO4DM
(§1.10 item 6). :func:`acquisition_day` and :func:`acquisition_window` are the one place that says so.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_LABEL = re.compile(r"^(\d{4})-(\d{2})-D(\d)$")
_START_DAY = (1, 11, 21)  # DOMAIN.md §1.5: start_D = [1, 11, 21]


class DekadError(ValueError):
    """A malformed dekad label or an impossible dekad."""


@dataclass(frozen=True, order=True)
class Dekad:
    """One dekad of one month. Ordered chronologically."""

    year: int
    month: int
    index: int  # 1, 2 or 3

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise DekadError(f"month must be 1-12, got {self.month}")
        if self.index not in (1, 2, 3):
            raise DekadError(f"dekad number must be 1, 2 or 3, got {self.index}")
        if not 1 <= self.year <= 9999:
            raise DekadError(f"year out of range: {self.year}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def parse(cls, label: str) -> Dekad:
        """Parse ``YYYY-MM-Dn``; raise :class:`DekadError` with the offending label."""
        m = _LABEL.match(str(label).strip())
        if not m:
            raise DekadError(f"{label!r} is not a dekad label of the form YYYY-MM-Dn (e.g. 2026-11-D2)")
        try:
            return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except DekadError as exc:
            raise DekadError(f"{label!r} is not a valid dekad: {exc}") from None

    @classmethod
    def containing(cls, day: date) -> Dekad:
        """The dekad that contains a calendar date."""
        return cls(day.year, day.month, 1 if day.day <= 10 else 2 if day.day <= 20 else 3)

    # -- properties ---------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-D{self.index}"

    @property
    def yyyymm(self) -> str:
        return f"{self.year:04d}{self.month:02d}"

    @property
    def start(self) -> date:
        """First day (inclusive)."""
        return date(self.year, self.month, _START_DAY[self.index - 1])

    @property
    def end(self) -> date:
        """Last day (inclusive): the 10th, the 20th or the true last day of the month."""
        if self.index < 3:
            return date(self.year, self.month, _START_DAY[self.index] - 1)
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def ndays(self) -> int:
        """Number of days (8 to 11): the true denominator of QSCORE (DOMAIN.md §3.1)."""
        return (self.end - self.start).days + 1

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=k) for k in range(self.ndays)]

    def __str__(self) -> str:
        return self.label

    # -- arithmetic ---------------------------------------------------------------------------
    def shift(self, n: int) -> Dekad:
        """The dekad ``n`` dekads later (negative: earlier)."""
        k = (self.year * 12 + self.month - 1) * 3 + self.index - 1 + n
        year, rem = divmod(k, 36)
        return Dekad(year, rem // 3 + 1, rem % 3 + 1)

    def next(self) -> Dekad:
        return self.shift(1)

    def previous(self) -> Dekad:
        return self.shift(-1)

    def same_dekad_in(self, year: int) -> Dekad:
        return Dekad(year, self.month, self.index)

    def utc_bounds(self, tz: str = "UTC", dating: str = "scene") -> tuple[datetime, datetime]:
        """[start, end) as aware UTC datetimes holding the dekad's acquisitions (:func:`acquisition_window`).

        2024-03-D2 in Pacific/Noumea gives 2024-03-10T13:00Z .. 2024-03-20T13:00Z for scenes and
        2024-03-11T00:00Z .. 2024-03-21T00:00Z for daily products.
        """
        return acquisition_window(self.start, self.end, tz, dating=dating)


def dekad_range(first: Dekad, last: Dekad) -> list[Dekad]:
    """All dekads from ``first`` to ``last`` inclusive; empty if ``last`` is before ``first``."""
    out: list[Dekad] = []
    d = first
    while d <= last:
        out.append(d)
        d = d.next()
    return out


def iter_month_dekads(year: int, month: int) -> Iterator[Dekad]:
    for i in (1, 2, 3):
        yield Dekad(year, month, i)


def latest_complete_dekad(today: date) -> Dekad:
    """The last dekad whose last day is strictly before ``today`` (EO4DM AUTO, DOMAIN.md §1.5)."""
    return Dekad.containing(today).previous()


def local_date(instant: datetime, tz: str) -> date:
    """Calendar date of an acquisition in time zone ``tz`` (``"UTC"`` reproduces EO4DM).

    Naive datetimes are taken as UTC, the convention of ``system:time_start``.
    """
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(ZoneInfo(tz)).date()


def dekad_of(instant: datetime, tz: str, dating: str = "scene") -> Dekad:
    """Dekad an acquisition belongs to (:func:`acquisition_day`)."""
    return Dekad.containing(acquisition_day(instant, tz, dating=dating))


DATINGS = ("scene", "product_day")


def _zone(tz: str, dating: str) -> ZoneInfo:
    if dating == "scene":
        return ZoneInfo(tz)
    if dating == "product_day":
        # DOMAIN.md §3.4: daily gridded products are stamped 00:00 UTC of their product day, so the
        # product day is the UTC day, in every time zone (UTC−10 Tahiti as UTC+12 Fiji).
        return ZoneInfo("UTC")
    raise DekadError(f"unknown dating {dating!r} (expected 'scene' or 'product_day', products.Product.dating)")


def acquisition_day(instant: datetime, tz: str, *, dating: str) -> date:
    """The day an acquisition belongs to: a scene's local date in ``tz`` (``dating="scene"``) or a daily
    product's UTC product day (``"product_day"``, ``products.Product.dating``). Naive datetimes are UTC."""
    return local_date(instant, _zone(tz, dating).key)


def acquisition_window(first: date, last: date, tz: str, *, dating: str) -> tuple[datetime, datetime]:
    """[lo, hi) in aware UTC datetimes holding exactly the acquisitions whose :func:`acquisition_day`
    is in [first, last]: local midnights in ``tz`` for scenes, 00:00 UTC for daily products."""
    zone = _zone(tz, dating)
    lo = datetime.combine(first, time(0), zone).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(0), zone).astimezone(UTC)
    return lo, hi


def iso_utc(t: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (Earth Engine ``filterDate``, STAC ``datetime``)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_ndays(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def widened_window(dekad: Dekad, level: str) -> tuple[date, date]:
    """Inclusive local-date window for the local chain's widening (DOMAIN.md §1.5).

    ``""`` the dekad itself, ``"e"`` ±5 days, ``"m"`` ±10 days, ``"M"`` the whole month.
    """
    if level == "":
        return dekad.start, dekad.end
    if level == "e":
        return dekad.start - timedelta(days=5), dekad.end + timedelta(days=5)
    if level == "m":
        return dekad.start - timedelta(days=10), dekad.end + timedelta(days=10)
    if level == "M":
        return date(dekad.year, dekad.month, 1), date(dekad.year, dekad.month, month_ndays(dekad.year, dekad.month))
    raise DekadError(f"unknown window level {level!r} (expected '', 'e', 'm' or 'M')")


WINDOW_LEVELS = ("", "e", "m", "M")
