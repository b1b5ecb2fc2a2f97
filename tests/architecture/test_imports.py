"""The layers hold in the code itself, not only in a drawing (docs/architecture.md).

import-linter checks the direction of imports (pyproject.toml, run first by the README's
test command). What it cannot see is an import hidden in a function, which is how a
cycle between two modules usually hides: this test finds them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "tidings"
TESTS = ROOT / "tests"


def _local_imports(path: Path) -> list[str]:
    """`file:line in function()` of each import of a Tidings module inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name == "ready":  # AppConfig.ready() wires the hooks: its place
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name == "tidings" or name.startswith("tidings.") for name in names):
                found.append(f"{path.name}:{node.lineno} in {function.name}()")
    return found


def test_no_function_local_import_of_tidings_outside_ready():
    # Migrations too: a step that calls a helper imports it at the top.
    files = list(SRC.rglob("*.py"))
    found = [f"{p.parent.name}/{hit}" for p in sorted(files) for hit in _local_imports(p)]
    assert not found, "imports of Tidings's own modules inside functions:\n" + "\n".join(found)


def test_no_test_imports_tidings_inside_a_function():
    """The tests import what they use at the top too (a local import there hid which
    modules a test depends on). bench/ is left out: its child processes configure
    Django from their arguments before they import any of it."""
    files = [p for p in TESTS.rglob("*.py") if "node_modules" not in p.parts]
    found = [
        f"{p.relative_to(TESTS)}:{hit.split(':', 1)[1]}"
        for p in sorted(files)
        for hit in _local_imports(p)
    ]
    assert not found, "imports of Tidings's own modules inside test functions:\n" + "\n".join(found)


def test_the_check_sees_a_local_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from tidings.core import jobs\n\ndef ready():\n    import tidings\n"
    )
    assert _local_imports(sample) == ["sample.py:2 in f()"]
