"""The colour of each timetable category: the institution's own, else the documented
default, else one drawn from the name that is the same in every process."""

import subprocess
import sys

import pytest

from portal.sync import colours


@pytest.mark.parametrize(
    ("category", "preset"),
    [
        ("Lecture", "preset7"),
        ("HOORCOLLEGE", "preset7"),
        ("Exam", "preset0"),
        ("tentamen", "preset0"),
        ("Practical", "preset4"),
        ("Werkcollege", "preset1"),
        ("Seminar", "preset8"),
    ],
)
def test_the_usual_kinds_of_activity_have_their_documented_colour(category, preset):
    assert colours.colour(category) == preset


def test_the_institutions_colour_comes_first_whatever_the_case():
    own = {"LECTURE": "preset22", "Open day": "none"}

    assert colours.colour("lecture", own) == "preset22"
    assert colours.colour("open DAY", own) == "none"
    assert colours.colour("Exam", own) == "preset0"


def test_an_unknown_category_gets_a_preset_from_its_name_alone():
    picked = colours.colour("Guest lecture by Prof. X")

    assert picked in colours.PRESETS
    assert colours.colour("guest LECTURE by prof. x") == picked
    names = [f"Course {n}" for n in range(200)]
    assert len({colours.colour(name) for name in names}) > 20  # spread over the presets


def test_the_colour_from_a_name_is_the_same_in_another_process():
    # Python salts str hashes per process: the colour must not depend on that.
    code = "from portal.sync import colours; print(colours.colour('Guest lecture'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert other == colours.colour("Guest lecture")


@pytest.mark.parametrize(
    ("value", "preset"),
    [
        ("preset0", "preset0"),
        ("Preset24", "preset24"),
        ("Blue", "preset7"),
        (" darkred ", "preset15"),
        ("DarkCranberry", "preset24"),
        ("None", "none"),
        ("preset25", None),
        ("bleu", None),
        ("", None),
        ("preset-1", None),
    ],
)
def test_a_colour_is_read_by_preset_or_by_name(value, preset):
    assert colours.preset(value) == preset


def test_the_mapping_reads_back_as_the_console_shows_it():
    mapping = {"Lecture": "preset7", "Open day": "none"}

    text = colours.as_text(mapping)

    assert text == "Lecture = Blue\nOpen day = none"
    read = dict(line.split(" = ") for line in text.splitlines())
    assert {name: colours.preset(value) for name, value in read.items()} == mapping


def test_each_category_is_made_once_whatever_its_case():
    assert colours.distinct(["Lecture", " lecture ", "", "Exam", "LECTURE", "  "]) == [
        "Lecture",
        "Exam",
    ]
