"""The hash-locked requirements: every pin of an input is in its lock, every lock line
carries hashes, so that `pip install --require-hashes` installs exactly what was reviewed."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_pins(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            pins[_name(match.group(1))] = match.group(2)
    return pins


def _locked(path: Path) -> dict[str, list[str]]:
    """Each locked package's pin line and the hash lines that follow it."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            current = _name(match.group(1))
            entries[current] = [line]
        elif current and line.strip().startswith("--hash=sha256:"):
            entries[current].append(line.strip())
        elif not line.startswith(" "):
            current = None
    return entries


@pytest.mark.parametrize(
    ("inputs", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_every_pin_is_locked_at_its_version(inputs, lock):
    locked = {name: PIN.match(lines[0]).group(2) for name, lines in _locked(ROOT / lock).items()}
    pins = _pins(ROOT / inputs)
    behind = {name: version for name, version in pins.items() if locked.get(name) != version}
    assert not behind, f"{lock} is behind {inputs}: run ./dev lock ({behind})"


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_locked_package_carries_hashes(lock):
    entries = _locked(ROOT / lock)
    assert entries
    assert not [name for name, lines in entries.items() if len(lines) < 2]


def test_the_runtime_lock_is_inside_the_development_lock():
    runtime, development = (
        _locked(ROOT / n) for n in ("requirements.lock", "requirements-dev.lock")
    )
    differing = {
        name for name, lines in runtime.items() if development.get(name, [None])[0] != lines[0]
    }
    assert not differing, "the two locks pin these differently: run ./dev lock"
