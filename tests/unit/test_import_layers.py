"""The modules of the sync import one another in one direction only."""

import ast
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def portal_imports(module: str) -> set[str]:
    """The portal modules ``module`` imports anywhere in it (functions too)."""
    path = PORTAL.joinpath(*module.split(".")[1:]).with_suffix(".py")
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{base}.{node.module}" if node.module else base
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


LAYERS = ["portal.connections", "portal.sync.jobs", "portal.sync.engine", "portal.tokens"]


@pytest.mark.parametrize(("upper", "lower"), list(zip(LAYERS, LAYERS[1:], strict=False)))
def test_no_module_imports_one_above_it(upper, lower):
    below = LAYERS[LAYERS.index(lower) :]
    for module in below:
        assert upper not in portal_imports(module), f"{module} imports {upper}"
