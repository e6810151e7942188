"""The stylesheet parses as written: a brace lost in a merge would put every later rule
inside a media query, and the browser would say nothing."""

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static"


def test_every_block_of_every_stylesheet_is_closed():
    for path in STATIC.rglob("*.css"):
        text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', text)
        depth = 0
        for number, line in enumerate(text.splitlines(), start=1):
            depth += line.count("{") - line.count("}")
            assert depth >= 0, f"{path.name}:{number} closes a block that is not open"
        assert depth == 0, f"{path.name}: {depth} block(s) never closed"
