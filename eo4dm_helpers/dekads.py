"""Dekad arithmetic: D1 = days 1-10, D2 = 11-20, D3 = 21 to month end (DOMAIN.md §1.5, §3.1).

A dekad is labelled ``YYYY-MM-Dn`` (e.g. ``2026-11-D2``). Acquisitions are binned by the
territory's *local* calendar date (DOMAIN.md §3.4: New Caledonia is UTC+11, so a scene stamped
23:30 UTC on the 10th belongs to the 11th); ``binning="utc"`` reproduces EO4DM (§1.10 item 6).
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

    def utc_bounds(self, tz: str = "UTC") -> tuple[datetime, datetime]:
        """[start, end) as aware UTC datetimes for the dekad's local days in time zone ``tz``.

        2024-03-D2 in Pacific/Noumea gives 2024-03-10T13:00Z .. 2024-03-20T13:00Z.
        """
        zone = ZoneInfo(tz)
        lo = datetime.combine(self.start, time(0), zone).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(0), zone).astimezone(UTC)
        return lo, hi


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


def dekad_of(instant: datetime, tz: str) -> Dekad:
    """Dekad an acquisition belongs to, binned by its local date in ``tz``."""
    return Dekad.containing(local_date(instant, tz))


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
