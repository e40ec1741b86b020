"""dvc.yaml against the code: every stage depends on exactly the files it runs, and caches all it
writes (no plain `cache: false` out, which would keep the stage out of DVC's run-cache)."""

import ast
import re

import pytest
import yaml


def local_imports(path, root) -> set[str]:
    """Repository files that ``path`` imports, directly or through each other (fmnist_mlp only)."""
    seen, todo = set(), [path]
    while todo:
        tree = ast.parse((root / todo.pop()).read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                file = name.replace(".", "/") + ".py"
                if name.startswith("fmnist_mlp") and (root / file).is_file() and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen


def stages(root):
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items()


@pytest.mark.parametrize("name", ["fetch", "prepare", "gradcheck", "train_scratch", "search",
                                  "select", "evaluate", "landscape"])
def test_stage_deps_are_the_code_it_runs(root, name):
    stage = dict(stages(root))[name]
    (module,) = re.findall(r"python -m stages\.(\w+)", stage["cmd"])
    script = f"stages/{module}.py"
    expected = {script, "stages/__init__.py"} | local_imports(script, root) | \
        local_imports("stages/__init__.py", root)
    declared = {d for d in stage["deps"] if d.endswith(".py")}
    assert declared == expected, f"missing {expected - declared}, extra {declared - expected}"


def test_every_stage_is_in_the_run_cache(root):
    """DVC saves no run-cache entry for a stage with a plain out that is not cached."""
    for name, stage in stages(root):
        for out in stage.get("outs", []):
            options = next(iter(out.values())) if isinstance(out, dict) else {}
            assert options.get("cache", True), f"{name}: {out} has cache: false"
