"""What README.md and docs/ cite holds: every test they name (`test_...`, with a parametrized
case's id where they give one) is a test function in tests/; and the tests are filed by subject:
no test module imports another (what several share lives in conftest.py)."""

import ast
import re

import pytest

CITED = re.compile(r"`([^`]*)`")  # a code span
NAME = re.compile(r"(?<![\w/.])(test_\w+)(?:\[([^\]]*)\])?(?![\w.])")  # not tests/test_x.py


def cited(root) -> dict[str, set[str]]:
    """Each test name in a code span of README.md or docs/*.md: the files citing it."""
    names: dict[str, set[str]] = {}
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for span in CITED.findall(doc.read_text()):
            for name, case in NAME.findall(span):
                key = f"{name}[{case}]" if case else name
                names.setdefault(key, set()).add(str(doc.relative_to(root)))
    return names


def defined(root) -> dict[str, str]:
    """Every test function of tests/: its decorators' source (the parametrized cases' ids)."""
    found = {}
    for module in sorted((root / "tests").glob("test_*.py")):
        source = module.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found[node.name] = " ".join(ast.get_source_segment(source, d) or ""
                                            for d in node.decorator_list)
    return found


def test_the_docs_cite_tests(root):
    assert len(cited(root)) >= 20  # the pattern finds them: README.md and docs/ cite many


@pytest.mark.parametrize("doc", ["README.md", "docs/cluster.md"])
def test_the_pattern_reads_a_name_and_not_a_module(tmp_path, doc):
    (tmp_path / "docs").mkdir()
    for name in ("README.md", "docs/cluster.md"):
        (tmp_path / name).write_text("")
    (tmp_path / doc).write_text("see `tests/test_engine.py` and `test_x.py`, run "
                                "(`test_a_thing[remote]`, slow) and `test_b`.\n")
    assert cited(tmp_path) == {"test_a_thing[remote]": {doc}, "test_b": {doc}}


def test_every_test_the_docs_name_exists(root):
    found = defined(root)
    missing = []
    for key, docs in sorted(cited(root).items()):
        name, _, case = key.partition("[")
        case = case.rstrip("]")
        if name not in found or case and not re.search(
                rf"[\"']{re.escape(case)}[\"']", found[name]):
            missing.append(f"{key} ({', '.join(sorted(docs))})")
    assert not missing, "named in the docs, no such test in tests/: " + "; ".join(missing)


def test_no_test_module_imports_another(root):
    """A helper or fixture that several test modules use lives in conftest.py (``from conftest
    import ...``), not in the module whose history first needed it."""
    found = []
    for module in sorted((root / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):  # from tests import test_x: tests.test_x
                names = [f"{node.module or ''}.{alias.name}" for alias in node.names]
            else:
                continue
            found += [f"{module.name} imports {name}" for name in names
                      if any(part.startswith("test_") for part in name.split("."))]
    assert not found, "; ".join(found)
