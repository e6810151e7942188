"""The time zone the connect pages show times in: the institution's, else a guess.

An institution sets an IANA time zone (``Europe/Amsterdam``) in the support console. Until
it does, the zone is guessed from the browser's preferred language: its region (``nl-BE``:
Belgium), or the region the language is most likely spoken in (``nl``: the Netherlands,
from CLDR's likely subtags); a region whose time zones all keep the same time gives its
first (``Europe/Amsterdam``, ``Europe/Brussels``, ``Europe/Berlin``), anything else
(``en``: the United States, which has several) gives UTC. Times are stored in UTC and
converted only when shown.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_datetime, get_timezone_location
from flask import has_request_context, request
from flask_babel import get_locale
from flask_babel import gettext as _

DEFAULT = "UTC"


def valid(name: str | None) -> bool:
    """Whether ``name`` is an IANA time zone that zoneinfo knows (as spelled there)."""
    return bool(name) and name in available_timezones()


def _usable(name: str | None) -> bool:
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


def from_language(tag: str | None) -> str:
    """The time zone of a language tag's region (``nl`` or ``nl-NL``: Europe/Amsterdam);
    UTC when the region's zones keep different times, or none is known."""
    try:
        locale = Locale.parse((tag or "").replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT
    territory = locale.territory
    if territory is None:
        likely = get_global("likely_subtags").get(locale.language, "")
        territory = likely.split("_")[-1] if likely.count("_") >= 1 else None
    zones = [z for z in get_global("territory_zones").get(territory or "", []) if _usable(z)]
    return zones[0] if zones and _one_time(zones) else DEFAULT


def _one_time(zones: list[str]) -> bool:
    """Whether the zones keep the same time in winter and in summer (Germany's two do;
    the United States' do not)."""
    year = datetime.now(UTC).year
    instants = (datetime(year, 1, 15, tzinfo=UTC), datetime(year, 7, 15, tzinfo=UTC))
    return len({tuple(i.astimezone(ZoneInfo(z)).utcoffset() for i in instants) for z in zones}) == 1


def for_institution(institution) -> str:
    """The institution's time zone, else the one guessed from this browser's preferred
    language (or, when it names none, the page's)."""
    if institution is not None and _usable(institution.time_zone):
        return institution.time_zone
    if not has_request_context():
        return DEFAULT
    preferred = next(iter(request.accept_languages.values()), None)
    return from_language(preferred or str(get_locale() or ""))


def local_time(value: datetime | None, zone: str) -> str:
    """A stored UTC time as the page shows it, in ``zone`` and named by its place:
    "06 Dec 2026 07:15 (Amsterdam time)"."""
    if value is None:
        return ""
    locale = get_locale() or "en"
    moment = format_datetime(
        value.replace(tzinfo=UTC), "dd MMM y HH:mm", tzinfo=ZoneInfo(zone), locale=locale
    )
    place = "UTC" if zone == DEFAULT else get_timezone_location(ZoneInfo(zone), locale, True)
    return _("%(moment)s (%(place)s time)", moment=moment, place=place)
