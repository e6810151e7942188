"""Outlook's event resource as Graph v1.0 shows it: checking a create or update body,
the event as Exchange stores it, and the event as a response renders it.

What the stand-in reproduces because a client can trip over it, with the document each
follows:

- ``start`` and ``end`` come back in UTC from a GET unless ``Prefer: outlook.timezone="..."``
  names another zone (event-get.md, user-list-events.md; all-day events keep their own
  zone); a create or update answers in the zones the event was written in.
  ``originalStartTimeZone`` keeps the zone sent (event.md).
- Time zones are those of the dateTimeTimeZone resource type (datetimetimezone.md): Windows
  names, IANA names and ``UTC``; the common Windows names are in ``WINDOWS_TIME_ZONES``.
- Exchange keeps bodies as HTML: a text body comes back escaped and wrapped in an HTML
  document, so a body read back never equals the body sent (itemBody, event.md).
- Unknown properties, wrong types and bad enum values are refused as OData refuses them
  (RequestBodyRead); unknown time zones, an end before the start, and malformed extended
  property ids with Exchange's codes. Server-set (read-only) properties in a body are
  ignored, as OData services ignore computed properties.
- ``isAllDay`` (event.md): start and end at midnight in the same time zone, at least a day
  apart; otherwise 400.
- ``showAs`` is one of event.md's freeBusyStatus values (free, tentative, busy, oof,
  workingElsewhere, unknown), stored as written, ``busy`` when left out; ``categories`` a
  collection of strings naming master categories (event.md, outlookcategory.md).
- ``transactionId`` (event.md): a create that repeats one returns the event made before
  instead of a second one; it cannot be changed afterwards; it is returned only if set.
- Single-value extended properties (singlevaluelegacyextendedproperty-post-
  singlevalueextendedproperties.md, extended-properties-overview.md for the id formats)
  come back only when ``$expand``ed by id; a ``$filter`` on them selects events without
  returning them (singlevaluelegacyextendedproperty-get.md). Their names match
  case-sensitively, their values case-insensitively.
"""

import datetime
import html
import re
import zoneinfo
from urllib.parse import quote

from .odata import STRING_LITERAL, GraphError, clone, literal, not_implemented, pick

WINDOWS_TIME_ZONES = {
    "utc": "UTC",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "central europe standard time": "Europe/Budapest",
    "central european standard time": "Europe/Warsaw",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kyiv",
    "gtb standard time": "Europe/Bucharest",
    "russian standard time": "Europe/Moscow",
    "south africa standard time": "Africa/Johannesburg",
    "arabian standard time": "Asia/Dubai",
    "india standard time": "Asia/Kolkata",
    "singapore standard time": "Asia/Singapore",
    "china standard time": "Asia/Shanghai",
    "tokyo standard time": "Asia/Tokyo",
    "aus eastern standard time": "Australia/Sydney",
    "new zealand standard time": "Pacific/Auckland",
    "atlantic standard time": "America/Halifax",
    "e. south america standard time": "America/Sao_Paulo",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "us mountain standard time": "America/Phoenix",
    "pacific standard time": "America/Los_Angeles",
    "alaskan standard time": "America/Anchorage",
    "hawaiian standard time": "Pacific/Honolulu",
}

# The order in which Graph lists an event's properties.
EVENT_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "transactionId",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "hasAttachments",
    "subject",
    "bodyPreview",
    "importance",
    "sensitivity",
    "isAllDay",
    "isCancelled",
    "isOrganizer",
    "responseRequested",
    "seriesMasterId",
    "showAs",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "allowNewTimeProposals",
    "isDraft",
    "hideAttendees",
    "recurrence",
    "onlineMeeting",
    "responseStatus",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "organizer",
)
# Properties and relationships a body may name that the server sets or the stand-in ignores.
IGNORED_PROPERTIES = {
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "iCalUId",
    "hasAttachments",
    "bodyPreview",
    "isCancelled",
    "isOrganizer",
    "seriesMasterId",
    "type",
    "webLink",
    "onlineMeetingUrl",
    "onlineMeeting",
    "responseStatus",
    "organizer",
    "originalStart",
    "attachments",
    "calendar",
    "extensions",
    "instances",
    "multiValueExtendedProperties",
}
BOOLEANS = {
    "isAllDay",
    "isReminderOn",
    "responseRequested",
    "isOnlineMeeting",
    "allowNewTimeProposals",
    "hideAttendees",
    "isDraft",
}
ENUMS = {
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "onlineMeetingProvider": (
        "unknown",
        "teamsForBusiness",
        "skypeForBusiness",
        "skypeForConsumer",
    ),
}
STORED_AS_GIVEN = {"attendees", "recurrence"}
WRITABLE = (
    {"subject", "body", "start", "end", "location", "locations", "categories", "transactionId"}
    | {"reminderMinutesBeforeStart", "singleValueExtendedProperties"}
    | BOOLEANS
    | set(ENUMS)
    | STORED_AS_GIVEN
)

HTML_DOCUMENT = (
    '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
    "\r\n</head>\r\n<body>\r\n{}\r\n</body>\r\n</html>\r\n"
)
DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?Z?")
PROPERTY_TYPES = {
    "applicationtime",
    "binary",
    "boolean",
    "clsid",
    "currency",
    "double",
    "float",
    "integer",
    "long",
    "object",
    "short",
    "string",
    "systemtime",
}
PROPERTY_ID = re.compile(
    r"(?P<type>\w+)\s+(?:\{(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})\}\s+"
    r"(?:name\s+(?P<name>\S.*)|id\s+(?P<number>0x[0-9a-f]+))|(?P<tag>0x[0-9a-f]+))",
    re.IGNORECASE,
)
ALL_DAY_TOO_SHORT = (
    "Your request can't be completed. The duration of an event marked as All day must be at "
    "least 24 hours."
)
BAD_PROPERTY_ID = (
    "PropertyId values may only be in one of the following formats: "
    "'MapiPropertyType namespaceGuid Name propertyName', "
    "'MapiPropertyType namespaceGuid Id propertyId' or 'MapiPropertyType propertyTag'."
)


# Creating, updating and rendering


def new_event(body, owner_name: str, owner_address: str) -> dict:
    """The event a create body describes, as stored, without the fields the server assigns
    (``id``, ``iCalUId``, ``changeKey``, timestamps)."""
    event = {
        "categories": [],
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": True,
        "hasAttachments": False,
        "subject": "",
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": True,
        "seriesMasterId": None,
        "showAs": "busy",
        "type": "singleInstance",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "allowNewTimeProposals": True,
        "isDraft": False,
        "hideAttendees": False,
        "recurrence": None,
        "onlineMeeting": None,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": "html", "content": ""},
        "location": _location(None),
        "locations": [],
        "attendees": [],
        "organizer": {"emailAddress": {"name": owner_name, "address": owner_address}},
        "singleValueExtendedProperties": [],
    }
    body = _object(body)
    for required in ("start", "end"):
        if required not in body:
            raise _validation_failure()
    _apply(event, body, creating=True)
    return event


def patch_event(event: dict, body) -> dict:
    """The event after a PATCH with ``body`` (a new copy; server fields are left as they
    were)."""
    updated = clone(event)
    _apply(updated, _object(body), creating=False)
    return updated


def render_event(
    event: dict,
    time_zone: str | None,
    expand: list[str] | None = None,
    selected: list[str] | None = None,
) -> dict:
    """The event as a response shows it: ``start``/``end`` in ``time_zone`` (None: the zones
    the event was written in), extended properties only if their id is in ``expand``."""
    rendered = {"@odata.etag": f'W/"{event["changeKey"]}"'}
    for name in EVENT_PROPERTIES:
        if name in event:
            rendered[name] = clone(event[name])
    rendered["webLink"] = (
        f"https://outlook.office365.com/owa/?itemid={quote(event['id'], safe='')}"
        "&exvsurl=1&path=/calendar/item"
    )
    if not event["isAllDay"]:
        for name in ("start", "end"):
            rendered[name] = _in_zone(event[name], time_zone or event[name]["timeZone"])
    always = ("@odata.etag", "id")
    if expand:
        wanted = {_property_key(property_id) for property_id in expand}
        found = [
            dict(p)
            for p in event["singleValueExtendedProperties"]
            if _property_key(p["id"]) in wanted
        ]
        if found:
            rendered["singleValueExtendedProperties"] = found
            always += ("singleValueExtendedProperties",)
    return pick(rendered, selected, always)


# Query options on events


def expanded_properties(raw: str | None) -> list[str] | None:
    """The extended property ids an ``$expand=singleValueExtendedProperties($filter=id eq
    '...' [or id eq '...'])`` asks for (singlevaluelegacyextendedproperty-get.md). Any other
    ``$expand``, a bare one among them, is answered 501: the document does not say what it
    gives."""
    if raw is None:
        return None
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties\s*\(\s*\$filter\s*=\s*(.*)\)\s*",
        raw,
        re.IGNORECASE | re.DOTALL,
    )
    if match is None:
        raise not_implemented(f"$expand={raw} on events")
    clause = rf"id\s+eq\s+{STRING_LITERAL}"
    condition = match[1].strip()
    if condition.startswith("(") and condition.endswith(")"):
        condition = condition[1:-1]
    if not re.fullmatch(rf"\s*{clause}(?:\s+or\s+{clause})*\s*", condition, re.IGNORECASE):
        raise GraphError(
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        )
    ids = [literal(value) for value in re.findall(clause, condition, re.IGNORECASE)]
    for property_id in ids:
        _property_key(property_id)
    return ids


def extended_property_filter(raw: str | None):
    """A test for events from ``$filter=singleValueExtendedProperties/any(ep: ep/id eq '...'
    and ep/value eq '...')`` (also ``ne``, ``contains(ep/value, '...')`` and
    ``startswith(ep/value, '...')``); None without a ``$filter``. These are the forms
    "Get singleValueLegacyExtendedProperty" (singlevaluelegacyextendedproperty-get.md) lists
    for string properties of events, each with a condition on the value; any other is 501."""
    if raw is None:
        return None
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*(.*)\)\s*",
        raw,
        re.IGNORECASE | re.DOTALL,
    )
    if match is None:
        raise not_implemented(f"$filter={raw} on events")
    var, condition = re.escape(match[1]), match[2]
    id_clause = rf"{var}/id\s+eq\s+{STRING_LITERAL}"
    value_clauses = {
        "eq": rf"{var}/value\s+eq\s+{STRING_LITERAL}",
        "ne": rf"{var}/value\s+ne\s+{STRING_LITERAL}",
        "contains": rf"contains\(\s*{var}/value\s*,\s*{STRING_LITERAL}\s*\)",
        "startswith": rf"startswith\(\s*{var}/value\s*,\s*{STRING_LITERAL}\s*\)",
    }
    for operator, value_clause in value_clauses.items():
        pattern = rf"{id_clause}\s+and\s+{value_clause}"
        found = re.fullmatch(rf"\s*{pattern}\s*", condition, re.IGNORECASE | re.DOTALL)
        if found:
            key = _property_key(literal(found[1]))
            wanted = literal(found[2]).lower()
            return lambda event: _matches(event, key, operator, wanted)
    raise not_implemented(f"$filter={raw} on events")


def preferred_time_zone(prefer: str) -> str | None:
    """The zone a ``Prefer: outlook.timezone="..."`` header asks for, checked; or None."""
    match = re.search(r'outlook\.timezone\s*=\s*"([^"]*)"', prefer, re.IGNORECASE)
    if match is None:
        return None
    time_zone(match[1])
    return match[1]


def time_zone(name: str) -> datetime.tzinfo:
    """The zone Graph means by a Windows or IANA time zone name."""
    key = WINDOWS_TIME_ZONES.get(name.strip().lower(), name.strip())
    if key == "UTC":
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        message = (
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{name}'."
        )
        raise GraphError(400, "TimeZoneNotSupportedException", message) from None


# Applying a body


def _apply(event: dict, body: dict, creating: bool) -> None:
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name not in WRITABLE:
            if name in IGNORED_PROPERTIES:
                continue
            raise GraphError(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make "
                "sure to only use property names that are defined by the type or mark the type "
                "as open type.",
            )
        if name == "subject":
            event[name] = _typed(value, str, "Edm.String", nullable=True) or ""
        elif name in BOOLEANS:
            event[name] = _typed(value, bool, "Edm.Boolean")
        elif name == "reminderMinutesBeforeStart":
            event[name] = _typed(value, int, "Edm.Int32")
        elif name in ENUMS:
            event[name] = _enum(name, value)
        elif name == "categories":
            event[name] = [_typed(c, str, "Edm.String") for c in _typed(value, list, "Collection")]
        elif name == "transactionId":
            _transaction_id(event, value, creating)
        elif name == "body":
            event["body"], event["bodyPreview"] = _body(value)
        elif name in ("start", "end"):
            event[name] = _date_time_time_zone(value)
            event[f"original{name.capitalize()}TimeZone"] = event[name]["timeZone"]
        elif name == "location":
            event["location"] = _location(value)
            event["locations"] = [event["location"]] if event["location"]["displayName"] else []
        elif name == "locations":
            event["locations"] = [_location(v) for v in _typed(value, list, "Collection")]
        elif name == "singleValueExtendedProperties":
            _set_extended_properties(event, value)
        else:
            event[name] = clone(value)
    if event.get("recurrence"):
        event["type"] = "seriesMaster"
    _check_times(event)


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    return body


def _typed(value, kind: type, edm: str, nullable: bool = False):
    if value is None and nullable:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        message = f"Cannot convert a primitive value to the expected type '{edm}'."
        raise GraphError(400, "RequestBodyRead", message)
    return value


def _enum(name: str, value) -> str:
    for member in ENUMS[name]:
        if isinstance(value, str) and value.lower() == member.lower():
            return member
    raise GraphError(400, "RequestBodyRead", f"Requested value '{value}' was not found.")


def _transaction_id(event: dict, value, creating: bool) -> None:
    value = _typed(value, str, "Edm.String", nullable=True)
    if creating:
        if value:
            event["transactionId"] = value
    elif value != event.get("transactionId"):
        raise GraphError(
            400, "ErrorInvalidRequest", "The transactionId of an event can't be changed."
        )


def _body(value) -> tuple[dict, str]:
    value = _typed(value, dict, "microsoft.graph.itemBody")
    content = _typed(value.get("content"), str, "Edm.String", nullable=True) or ""
    kind = value.get("contentType", "text")
    if not isinstance(kind, str) or kind.lower() not in ("text", "html"):
        raise GraphError(400, "RequestBodyRead", f"Requested value '{kind}' was not found.")
    if not content:
        return {"contentType": "html", "content": ""}, ""
    if kind.lower() == "text":
        text = content
        escaped = html.escape(content.replace("\r\n", "\n")).replace("\n", "<br>\r\n")
        stored = HTML_DOCUMENT.format(escaped)
    else:
        text = html.unescape(re.sub(r"<[^>]*>", "", content))
        lowered = content.lstrip().lower()
        stored = content if lowered.startswith("<html") else HTML_DOCUMENT.format(content)
    return {"contentType": "html", "content": stored}, text.strip()[:255]


def _date_time_time_zone(value) -> dict:
    value = _typed(value, dict, "microsoft.graph.dateTimeTimeZone")
    zone_name = value.get("timeZone")
    time_zone(zone_name if isinstance(zone_name, str) else "")
    raw = value.get("dateTime")
    match = DATE_TIME.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        raise _validation_failure()
    try:
        local = datetime.datetime.fromisoformat(match[1])
    except ValueError:
        raise _validation_failure() from None
    local = local.replace(microsecond=int((match[2] or "").ljust(6, "0")[:6]))
    return {"dateTime": _format(local), "timeZone": zone_name}


def _location(value) -> dict:
    if value is None:
        return {
            "displayName": "",
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
        }
    value = _typed(value, dict, "microsoft.graph.location")
    name = _typed(value.get("displayName"), str, "Edm.String", nullable=True) or ""
    if not name:
        return _location(None)
    return {
        **value,
        "displayName": name,
        "locationType": value.get("locationType", "default"),
        "uniqueId": value.get("uniqueId", name),
        "uniqueIdType": value.get("uniqueIdType", "private"),
    }


def _set_extended_properties(event: dict, value) -> None:
    for item in _typed(value, list, "Collection"):
        item = _typed(item, dict, "microsoft.graph.singleValueLegacyExtendedProperty")
        property_id = _typed(item.get("id"), str, "Edm.String")
        key = _property_key(property_id)
        entry = {"id": property_id.strip(), "value": _typed(item.get("value"), str, "Edm.String")}
        properties = event["singleValueExtendedProperties"]
        properties[:] = [p for p in properties if _property_key(p["id"]) != key] + [entry]


def _check_times(event: dict) -> None:
    start, end = _aware(event["start"]), _aware(event["end"])
    if end < start:
        raise _validation_failure()
    if event["isAllDay"]:
        _check_all_day(event)


def _check_all_day(event: dict) -> None:
    """The event resource's ``isAllDay``: "start and end time must be set to midnight and
    be in the same time zone" (Graph v1.0, event resource type); otherwise a validation
    failure (the code is not documented). An end on the start's own midnight is refused as
    Graph refuses it: "The duration of an event marked as All day must be at least 24
    hours." The days are counted on the calendar, so a day that loses an hour to summer
    time is still a whole day."""
    local_start = datetime.datetime.fromisoformat(event["start"]["dateTime"][:26])
    local_end = datetime.datetime.fromisoformat(event["end"]["dateTime"][:26])
    midnight = datetime.time(0, 0)
    same_zone = time_zone(event["start"]["timeZone"]) == time_zone(event["end"]["timeZone"])
    if local_start.time() != midnight or local_end.time() != midnight or not same_zone:
        raise _validation_failure()
    if local_end.date() <= local_start.date():
        raise GraphError(400, "ErrorInvalidRequest", ALL_DAY_TOO_SHORT)


def _validation_failure() -> GraphError:
    return GraphError(
        400, "ErrorPropertyValidationFailure", "At least one property failed validation."
    )


# Times and extended properties


def _aware(value: dict) -> datetime.datetime:
    local = datetime.datetime.fromisoformat(value["dateTime"][:26])
    return local.replace(tzinfo=time_zone(value["timeZone"]))


def _in_zone(value: dict, zone_name: str) -> dict:
    moved = _aware(value).astimezone(time_zone(zone_name)).replace(tzinfo=None)
    return {"dateTime": _format(moved), "timeZone": zone_name}


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond:06d}0"


def _property_key(property_id: str) -> tuple:
    """What identifies an extended property: the type, the GUID and the number are
    case-insensitive, the name is not."""
    match = PROPERTY_ID.fullmatch(property_id.strip())
    if match is None or match["type"].lower() not in PROPERTY_TYPES:
        raise GraphError(400, "ErrorInvalidProperty", BAD_PROPERTY_ID)
    if match["tag"]:
        return (match["type"].lower(), int(match["tag"], 16))
    if match["name"]:
        return (match["type"].lower(), match["guid"].lower(), "name", match["name"])
    return (match["type"].lower(), match["guid"].lower(), "id", int(match["number"], 16))


def _matches(event: dict, key: tuple, operator: str, wanted: str) -> bool:
    """Whether the event has the property with a value that passes; values compare without
    regard to case ("Filtering the value property ... is case-insensitive")."""
    for prop in event["singleValueExtendedProperties"]:
        if _property_key(prop["id"]) != key:
            continue
        value = prop["value"].lower()
        if operator == "eq":
            return value == wanted
        if operator == "ne":
            return value != wanted
        if operator == "contains":
            return wanted in value
        return value.startswith(wanted)
    return False
