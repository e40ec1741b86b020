"""dvc.yaml against the code: every stage lists as deps exactly its script and the subpackages of
fmnist_mlp that it runs (what it imports, and what those import: grimp, import-linter's graph),
and caches all it writes (no plain `cache: false` out, which would keep the stage out of DVC's
run-cache)."""

import ast
import functools
import re
import shutil

import grimp
import pytest
import yaml


@functools.cache
def graph():
    """fmnist_mlp's import graph, as import-linter builds it."""
    return grimp.build_graph("fmnist_mlp")


def imported(script, root) -> set[str]:
    """Every module of fmnist_mlp that the stage script imports, directly or indirectly."""
    named = set()
    for node in ast.walk(ast.parse((root / script).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            named |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
    direct = named & graph().modules
    return direct.union(*(graph().find_upstream_modules(m) for m in direct))


def subpackages(script, root) -> set[str]:
    """``fmnist_mlp/<sub>`` of every module the stage script imports, directly or indirectly."""
    return {"/".join(m.split(".")[:2]) for m in imported(script, root) if m.count(".") >= 1}


def script(stage) -> str:
    (module,) = re.findall(r"python -m stages\.(\w+)", stage["cmd"])
    return f"stages/{module}.py"


def stages(root):
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items()


@pytest.mark.parametrize("name", ["fetch", "prepare", "gradcheck", "train_scratch", "search",
                                  "select", "evaluate_scratch", "evaluate_keras",
                                  "landscape"])
def test_stage_deps_are_the_code_it_runs(root, name):
    stage = dict(stages(root))[name]
    expected = {script(stage)} | subpackages(script(stage), root)
    declared = {d for d in stage["deps"] if d.startswith(("stages/", "fmnist_mlp"))}
    assert declared == expected, f"missing {expected - declared}, extra {declared - expected}"


def test_the_top_package_holds_no_code(root):
    """fmnist_mlp/__init__.py is in no stage's deps: it may hold a docstring only."""
    tree = ast.parse((root / "fmnist_mlp/__init__.py").read_text())
    assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in tree.body)


def test_every_stage_is_in_the_run_cache(root):
    """DVC saves no run-cache entry for a stage with a plain out that is not cached."""
    for name, stage in stages(root):
        for out in stage.get("outs", []):
            options = next(iter(out.values())) if isinstance(out, dict) else {}
            assert options.get("cache", True), f"{name}: {out} has cache: false"


def mermaid_edges(text: str) -> set[tuple[str, str]]:
    """``a --> b`` edges of a mermaid flowchart by node label, search items as one "search"."""
    labels = dict(re.findall(r'(\w+)\["([^"]+)"\]', text))
    edges = set()
    for a, b in re.findall(r"^\s*(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)", text, re.M):
        a, b = (labels.get(n, n).split("@")[0] for n in (a, b))
        edges.add((a, b))
    return edges


def test_readme_pipeline_graph_is_dvc_dag_with_the_matrix_collapsed(root):
    import subprocess
    import sys
    from pathlib import Path

    dvc = Path(sys.executable).parent / "dvc"
    dag = subprocess.run([str(dvc), "dag", "--mermaid"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    (readme,) = re.findall(r"```mermaid\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert mermaid_edges(readme) == mermaid_edges(dag)


def test_metrics_hold_only_what_the_pipeline_defines(root):
    """Every file of metrics/ is a declared metric. (dvc.lock keeps the stages dvc.yaml no longer
    defines, as `dvc repro` does: the engine writes a serial run's bytes.)"""
    declared = {next(iter(m)) if isinstance(m, dict) else m
                for _, stage in stages(root) for m in stage.get("metrics", [])}
    on_disk = {f"metrics/{p.name}" for p in (root / "metrics").iterdir()}
    assert on_disk == declared, f"undeclared {on_disk - declared}, missing {declared - on_disk}"


# What a search item must not depend on: an edit there retrains nothing (the costly stage).
NOT_IN_A_SEARCH_ITEM = ("fmnist_mlp/selection", "fmnist_mlp/evaluation", "fmnist_mlp/numpy_mlp",
                        "fmnist_mlp/gradcheck", "fmnist_mlp/sgd", "fmnist_mlp/landscape",
                        "fmnist_mlp/dataset", "fmnist_mlp/raw", "fmnist_mlp/engine",
                        "stages/select_best.py")


def test_a_search_item_depends_on_neither_selection_statistics_figures_nor_numpy_maths(root):
    deps = set(dict(stages(root))["search"]["deps"])
    assert not deps & set(NOT_IN_A_SEARCH_ITEM), deps & set(NOT_IN_A_SEARCH_ITEM)
    params = dict(stages(root))["search"]["params"]
    assert params == ["search.epochs", "search.seeds"]  # the axes are the matrix's


def listed_never_run(root) -> dict[str, list[str]]:
    """Per stage, the library modules its deps list (every module of a listed subpackage) that it
    never imports: an edit to one of them reruns the stage for nothing."""
    found = {}
    for name, stage in stages(root):
        runs = imported(script(stage), root)
        found[name] = sorted(
            ".".join(path.with_suffix("").parts)
            for dep in stage["deps"] if dep.startswith("fmnist_mlp/")
            for path in sorted((root / dep).rglob("*.py")) if path.name != "__init__.py"
            for path in [path.relative_to(root)]
            if ".".join(path.with_suffix("").parts) not in runs)
    return found


def test_an_edit_reruns_only_stages_that_run_the_edited_module(root):
    """The (module, stage) pairs that dvc.yaml lists but the stage never imports are exactly as
    many as docs/design.md says, and no search item lists a module it never imports: an edit
    there would retrain every item."""
    pairs = listed_never_run(root)
    assert pairs["search"] == [], f"listed by every search item, never imported: {pairs['search']}"
    design = (root / "docs/design.md").read_text()
    (documented,) = re.findall(r"\*\*(\d+) \(module, stage\) pairs\*\*", design)
    after = design.split("(module, stage) pairs**", 1)[1]
    bullets = re.search(r"(?:^- .*\n)+", after, re.M).group(0)  # the list that follows
    listed = {name: sorted(f"fmnist_mlp.{m.replace('/', '.')}" for m in re.findall(r"`([\w/]+)`",
                                                                                 modules))
              for name, modules in re.findall(r"^- (\w+): (.*)$", bullets, re.M)}
    found = {name: mods for name, mods in pairs.items() if mods}
    assert sum(map(len, pairs.values())) == int(documented), found
    assert listed == found, "docs/design.md's list of the pairs is not the code's"


def test_the_over_invalidation_count_sees_a_module_no_stage_imports(root, tmp_path):
    """The count itself: a module added to a listed subpackage and imported by nothing is one
    more pair for every stage that lists the subpackage."""
    copy = tmp_path / "repo"
    for code in ("fmnist_mlp", "stages"):
        shutil.copytree(root / code, copy / code, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "dvc.yaml", copy)
    (copy / "fmnist_mlp/grid/unused.py").write_text('"""imported by no stage"""\n')
    pairs = listed_never_run(copy)  # the import graph is the package's: the copy adds no import
    assert pairs["search"] == ["fmnist_mlp.grid.unused"]
    assert {name for name, mods in pairs.items() if "fmnist_mlp.grid.unused" in mods} == {
        "search", "select", "evaluate_keras"}
