"""What to write: the feed's occurrences against what the portal wrote before.

A pure function: occurrences in, creates, updates and deletes out. An occurrence whose
content hash matches its stored item needs no write, so an unchanged timetable gives an
empty plan.
"""

from dataclasses import dataclass, field

from .feed import Occurrence


@dataclass(frozen=True)
class Written:
    """What the portal keeps of an event it wrote."""

    event_id: str
    content_hash: str


@dataclass
class Plan:
    """The writes that bring the calendar in line with the feed."""

    creates: list[Occurrence] = field(default_factory=list)
    updates: list[tuple[Occurrence, str]] = field(default_factory=list)  # occurrence, event ID
    deletes: list[tuple[str, str]] = field(default_factory=list)  # key, event ID


def make(occurrences: list[Occurrence], written: dict[str, Written]) -> Plan:
    """Compare the feed with the stored items (key -> Written)."""
    plan = Plan()
    seen = set()
    for occurrence in occurrences:
        seen.add(occurrence.key)
        before = written.get(occurrence.key)
        if before is None:
            plan.creates.append(occurrence)
        elif before.content_hash != occurrence.content_hash():
            plan.updates.append((occurrence, before.event_id))
    plan.deletes = [(key, item.event_id) for key, item in written.items() if key not in seen]
    return plan
