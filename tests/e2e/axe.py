"""axe-core in the browser tests: every page the tests reach is checked for accessibility.

The portal's Content-Security-Policy refuses inline scripts, so axe is not added as a
``<script>`` element: its source is evaluated through the DevTools protocol, which the page's
policy does not govern. ``./dev test`` installs the version pinned in ``package-lock.json``.
"""

from functools import cache
from pathlib import Path

AXE = Path(__file__).with_name("node_modules") / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}"""


@cache
def _source() -> str:
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run ./dev test, or npm ci --prefix tests/e2e")
    return AXE.read_text()


def violations(page) -> list[dict]:
    """axe's violations in ``page`` as it is now, each with its rule, impact and elements."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(f"() => {{ {_source()}\n}}")
    return page.evaluate(RUN)


def report(found: list[dict]) -> str:
    """A readable list of violations: rule, impact, what it asks for and where."""
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_accessible(page, name: str) -> None:
    """Fail when axe finds a serious or critical violation in ``page`` (named ``name``),
    once it has loaded (a page reached by a click may still be loading its stylesheet)."""
    page.wait_for_load_state()
    blocking = [v for v in violations(page) if v["impact"] in BLOCKING]
    assert not blocking, f"Accessibility violations on {name} ({page.url}):\n" + report(blocking)
