"""The package uses Dagster and the standard library through their public APIs only.

No import from ``dagster._...`` (or any library's private module), no private attributes of
library objects, no monkeypatching of library module attributes, no global hooks that change
other code's behaviour, and no work at import of the code location beyond building Definitions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "impact_assets"
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: Text patterns that may not appear anywhere in the package (comments and docstrings included:
#: a hook described as a plan is a hook on its way in).
FORBIDDEN_TEXT = {
    r"\bdagster\._": "an import or use of Dagster's private modules",
    r"\bdagster_shared\._|\bdagster_graphql\._": "a private Dagster module",
    r"_step_execution_context": "the step context's private attribute",
    r"\._processes\b|\._max_workers\b|\._broken\b": "ProcessPoolExecutor's private attributes",
    r"_metadata_accumulator": "Dagster's private metadata accumulator",
    r"\bgc\.freeze\b|\bgc\.disable\b": "a global change to the garbage collector",
    r"\bos\.sync\(": "a flush of the whole host's disks",
    r"listens_for|event\.listen\(": "a global SQLAlchemy event hook",
    r"get_preparation_data": "multiprocessing's spawn internals",
    r"set_forkserver_preload|set_start_method": "a global multiprocessing setting",
    r"\batexit\.register\b|multiprocessing\.util": "a process-exit hook",
    r"sys\.argv": "sniffing the command line",
    r"PRAGMA": "a SQLite setting outside the instance's configuration",
}


#: What a script's own entry point may do: a module run as ``python -m`` reads its arguments.
ALLOWED_UNDER_MAIN_GUARD = {r"sys\.argv"}


def _main_guard_lines(source: str) -> set[int]:
    """Line numbers inside ``if __name__ == "__main__":`` blocks at module level."""
    lines: set[int] = set()
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
            and any(
                isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
            )
        ):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def _text_violations(path: Path) -> list[str]:
    found = []
    source = path.read_text(encoding="utf-8")
    under_guard = _main_guard_lines(source)
    for number, line in enumerate(source.splitlines(), start=1):
        for pattern, why in FORBIDDEN_TEXT.items():
            if pattern in ALLOWED_UNDER_MAIN_GUARD and number in under_guard:
                continue
            if re.search(pattern, line):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {why}: {line.strip()}")
    return found


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _ast_violations(path: Path) -> list[str]:
    """Private modules of other packages, private attributes of imported modules, and
    assignments to attributes of imported modules (monkeypatching)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(PACKAGE.parent)
    found = []
    for module in _imported_modules(tree):
        parts = module.split(".")
        if parts[0] not in ("impact_assets", "__future__") and any(
            p.startswith("_") for p in parts
        ):
            found.append(f"{where}: imports the private module {module}")
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not alias.name.startswith("impact_assets"):
                    aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                private = [a for a in chain if a.startswith("_") and not a.startswith("__")]
                if private:
                    found.append(
                        f"{where}:{node.lineno}: private attribute {base.id}...{private[0]}"
                    )
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute):
                base = base.value
            if (
                isinstance(target, ast.Attribute)
                and isinstance(base, ast.Name)
                and base.id in aliases
            ):
                found.append(f"{where}:{node.lineno}: assigns to {base.id}.{target.attr}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in aliases
        ):
            found.append(f"{where}:{node.lineno}: setattr on module {node.args[0].id}")
    return found


def test_there_are_sources_to_check():
    assert len(SOURCES) > 30 and PACKAGE / "definitions.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_api_monkeypatch_or_global_hook(path):
    assert _text_violations(path) + _ast_violations(path) == []


def test_the_pattern_test_catches_each_kind(tmp_path):
    """The checks above find what they are meant to find."""
    bad = tmp_path / "impact_assets" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import gc\n"
        "import multiprocessing.spawn\n"
        "from dagster._core.definitions.data_version import DATA_VERSION_TAG\n"
        "from sqlalchemy import event\n"
        "multiprocessing.spawn.get_preparation_data = lambda name: {}\n"
        "gc.freeze()\n"
        "@event.listens_for(object, 'connect')\n"
        "def hook(*args): pass\n"
        "pool = None\n"
        "print(pool._processes, multiprocessing._private)\n"
        "import sys\n"
        "MODE = sys.argv[1]\n"
        'if __name__ == "__main__":\n'
        "    print(sys.argv[1:])\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, bad.parent
    try:
        text, tree = _text_violations(bad), _ast_violations(bad)
    finally:
        PACKAGE = saved
    joined = "\n".join(text + tree)
    for expected in (
        "Dagster's private modules",
        "multiprocessing's spawn internals",
        "garbage collector",
        "SQLAlchemy event hook",
        "ProcessPoolExecutor's private attributes",
        "imports the private module dagster._core",
        "assigns to multiprocessing.get_preparation_data",
        "private attribute multiprocessing..._private",
    ):
        assert expected in joined, expected
    # the command line is sniffed at import (line 12), not read by the script's entry point
    assert [v for v in text if "sniffing the command line" in v] == [
        "impact_assets/bad.py:12: sniffing the command line: MODE = sys.argv[1]"
    ]
