"""What to write: the feed's occurrences against what the portal wrote before.

A pure function: occurrences in, creates, updates and deletes out. An occurrence whose
content hash matches its stored item needs no write, so an unchanged timetable gives an
empty plan. Nor does a write Graph refused for good while it would be the same request
again: only a change to the occurrence (or to how the portal writes it) sends it again.
"""

from dataclasses import dataclass, field

from .feed import Occurrence

# The request hash of a removal: a refused delete is held while the occurrence stays away.
REMOVAL = "removal"


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
    # Keys whose write Graph refused before and would be the same again: not sent.
    held: list[str] = field(default_factory=list)
    # Keys whose refusal no longer applies (the occurrence changed, or needs no write now).
    cleared: list[str] = field(default_factory=list)


def make(
    occurrences: list[Occurrence],
    written: dict[str, Written],
    refused: dict[str, str] | None = None,
) -> Plan:
    """Compare the feed with the stored items (key -> Written) and the refused writes
    (key -> request hash)."""
    refused = refused or {}
    plan = Plan()
    seen = set()
    for occurrence in occurrences:
        seen.add(occurrence.key)
        before = written.get(occurrence.key)
        if before is not None and before.content_hash == occurrence.content_hash():
            continue
        if occurrence.key in refused and refused[occurrence.key] == occurrence.request_hash():
            plan.held.append(occurrence.key)
        elif before is None:
            plan.creates.append(occurrence)
        else:
            plan.updates.append((occurrence, before.event_id))
    for key, item in written.items():
        if key in seen:
            continue
        if refused.get(key) == REMOVAL:
            plan.held.append(key)
        else:
            plan.deletes.append((key, item.event_id))
    held = set(plan.held)
    plan.cleared = [key for key in refused if key not in held]
    return plan
