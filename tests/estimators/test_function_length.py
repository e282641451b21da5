"""House rule: no function or method of the package is longer than 60 lines.

Long functions are where unrelated steps pile up; the rule keeps each one a single job that can
be read in one screen. Lines run from the ``def`` line to the function's last line (its
docstring and comments included, decorators not).
"""

import ast
from pathlib import Path

import skhyperlearn

MAX_LINES = 60
PACKAGE = Path(skhyperlearn.__file__).resolve().parent


def long_functions(root: Path = PACKAGE, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """``(file:line name, length)`` of every function under ``root`` longer than ``limit``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    where = f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"
                    found.append((where, length))
    return found


def test_no_function_is_longer_than_60_lines():
    assert long_functions() == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path / "pkg") == [("pkg/mod.py:5 long", MAX_LINES + 1)]
