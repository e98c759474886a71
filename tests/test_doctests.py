"""The examples in the package's docstrings run, and docs cited from the code exist.

Every module of the package with a ``>>>`` example is collected (new ones join by
themselves); the examples run with the repository's test settings (no network, offscreen).
"""

import doctest
import importlib
import re
from pathlib import Path

import pytest

import glue_zeropoint

PACKAGE = Path(glue_zeropoint.__file__).parent  # the code under test (installed or not)
REPO = Path(__file__).parents[1]  # the checkout: docs/, README.md


def _modules_with_examples():
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found():
    assert len(MODULES) >= 10
    assert "glue_zeropoint.exceptions" in MODULES
    attempted = sum(doctest.testmod(importlib.import_module(name), report=False,
                                    optionflags=doctest.ELLIPSIS).attempted
                    for name in ("glue_zeropoint.exceptions", "glue_zeropoint.headers"))
    assert attempted >= 5  # examples do run (not all marked +SKIP)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_docs_cited_in_the_package_exist():
    cited = set()
    for path in list(PACKAGE.rglob("*.py")) + [REPO / "README.md"]:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, f"{path}: cites DESIGN.md; cite docs/architecture.md"
        cited.update(re.findall(r"docs/[\w./-]+\.md", text))
    assert cited, "the package cites its docs"
    missing = [name for name in sorted(cited) if not (REPO / name).is_file()]
    assert not missing, f"cited but missing: {missing}"
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    for number in range(1, 9):  # the code cites sections by number
        assert f"\n## {number}. " in page
