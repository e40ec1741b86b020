"""A stage's command line: core/cli.py in-process (one path per parameter of main, options'
flags, --help, a wrong command line refused with exit 2 before main, a failure in one line with
exit 1, Ctrl-C with 130), and every stage script as a user meets it, against dvc.yaml: argparse's
-h/--help with the full usage, a wrong command line refused with the usage and one error line
before any work, an option-like word never taken for a path, dvc.yaml passing every argument,
`python stages/<name>.py` works, and no file shadows the stdlib."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from fmnist_mlp.core import cli
from fmnist_mlp.core.errors import StudyError
from fmnist_mlp.grid.search import AXES, Trial


def run_stage(monkeypatch, main, *argv, options=None):
    """``cli.run`` of ``main`` as `python stages/x.py ARGV...`: its exit code."""
    monkeypatch.setattr("sys.argv", ["stages/x.py", *argv])
    with pytest.raises(SystemExit) as caught:
        cli.run(main, "x_stage: what it does.\n\nOUT_DIR: where it writes.\n", options)
    return caught.value.code


def test_a_stage_gets_one_path_per_parameter_of_main(monkeypatch):
    got = []

    def main(raw_dir, out_dir):
        got.extend([raw_dir, out_dir])
        raise StudyError("done")

    assert run_stage(monkeypatch, main, "a", "b/c") == "x_stage: error: done"
    assert got == [Path("a"), Path("b/c")]


def test_options_add_their_flags_and_are_built_from_them(monkeypatch):
    got = []

    def main(prepared_dir, trial):
        got.extend([prepared_dir, trial])
        raise StudyError("done")

    assert run_stage(monkeypatch, main, "p", "--hidden_layers", "2", "--hidden_units", "8",
                     "--learning_rate", "0.1", "--batch_size", "32", "--l2", "0",
                     "--activation", "tanh", options=Trial) == "x_stage: error: done"
    assert got == [Path("p"), Trial(2, 8, 0.1, 32, 0, "tanh")]
    assert isinstance(got[1].l2, int)  # as DVC wrote it: 0, not 0.0


def test_help_prints_the_usage_and_the_docstring(monkeypatch, capsys):
    assert run_stage(monkeypatch, lambda out_dir: None, "--help") == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: python -m stages.x [-h] OUT_DIR\n\nx_stage: what it does.\n")
    assert err == ""


@pytest.mark.parametrize("argv, error", [
    ((), "the following arguments are required: OUT_DIR"),
    (("a", "b"), "unrecognized arguments: b"),
    (("a", "--force"), "unrecognized arguments: --force"),
])
def test_a_wrong_command_line_exits_2_before_main(monkeypatch, capsys, argv, error):
    called = []

    def main(out_dir):
        called.append(out_dir)

    assert run_stage(monkeypatch, main, *argv) == 2
    assert called == []
    assert capsys.readouterr().err == ("usage: python -m stages.x [-h] OUT_DIR\n"
                                       f"x_stage: error: {error}\n")


def raises(error):
    def main(out_dir):
        raise error
    return main


@pytest.mark.parametrize("error, code", [
    (StudyError("models/x: broken"), "x_stage: error: models/x: broken"),
    (PermissionError(13, "Permission denied", "models/x"),
     "x_stage: error: models/x: Permission denied (errno 13)"),
    (MemoryError("Unable to allocate\n 8 GiB"),
     "x_stage: error: out of memory (Unable to allocate 8 GiB); lower the sizes in params.yaml"),
    (MemoryError(), "x_stage: error: out of memory (MemoryError); lower the sizes in params.yaml"),
])
def test_a_failure_is_one_line_and_exit_1(monkeypatch, error, code):
    assert run_stage(monkeypatch, raises(error), "out") == code  # SystemExit(str): exit 1


def test_ctrl_c_exits_130_in_one_line(monkeypatch, capsys):
    assert run_stage(monkeypatch, raises(KeyboardInterrupt), "out") == 130
    assert capsys.readouterr().err == "x_stage: interrupted; partial outputs removed\n"


def stage_commands() -> dict[str, list[str]]:
    """dvc.yaml's command of each stage script: ``{module: its arguments}``."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
    commands = [re.search(r"python -m stages\.(\w+)(.*)", " ".join(s["cmd"].split()))
                for s in stages]
    return {c[1]: c[2].split() for c in commands}


def arguments(module: str) -> tuple[list[str], list[str]]:
    """The stage's path arguments, one per parameter of main, and its flags (Trial's when the
    script passes it to cli.run), read from the script's source."""
    tree = ast.parse((ROOT / "stages" / f"{module}.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    run = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
               and ast.unparse(n.func) == "cli.run")
    params = [a.arg.upper() for a in main.args.args]
    if len(run.args) == 2:
        return params, []
    assert ast.unparse(run.args[2]) == "Trial", module  # options: the search stage's
    return params[:-1], [f"--{a} {a.upper()}" for a in AXES]


def expected_usage(module: str) -> str:
    """The usage argparse prints: the flags first, then the paths."""
    paths, flags = arguments(module)
    return " ".join([f"usage: python -m stages.{module} [-h]", *flags, *paths])


def run_all(commands, cwd):
    """Start every command at once (each loads numpy or more), then collect them; the
    repository is importable from any ``cwd``, as under `dvc repro`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    processes = [subprocess.Popen(c, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for c in commands]
    return [(p.wait(120), *p.communicate()) for p in processes]


def stage(module: str, *argv: str) -> list[str]:
    return [sys.executable, "-m", f"stages.{module}", *argv]


def test_every_stage_answers_help_with_its_full_usage_and_writes_nothing(tmp_path):
    modules = list(stage_commands())
    assert "search" in modules and "select_best" in modules
    commands = [stage(m, flag) for m in modules for flag in ("-h", "--help")]
    for (code, out, err), module in zip(run_all(commands, tmp_path),
                                        [m for m in modules for _ in range(2)]):
        assert code == 0 and err == "", (module, err)
        usage, rest = out.split("\n\n", 1)
        description = rest.split("\n\npositional arguments:")[0]
        assert " ".join(usage.split()) == expected_usage(module), (module, out)
        doc = ast.get_docstring(ast.parse((ROOT / "stages" / f"{module}.py").read_text()))
        assert " ".join(description.split()) == " ".join(doc.split()), module
    assert list(tmp_path.iterdir()) == []  # no directory named --help


def test_every_upper_case_name_in_a_docstring_is_an_argument_of_the_stage():
    """The docstrings say what each argument holds: by the names argparse prints."""
    for module in stage_commands():
        doc = ast.get_docstring(ast.parse((ROOT / "stages" / f"{module}.py").read_text()))
        named = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", doc))
        assert named <= set(expected_usage(module).split()), (module, named)
        assert "Usage:" not in doc, module  # argparse prints the usage


def test_dvc_yaml_passes_every_argument_of_each_stage():
    for module, argv in stage_commands().items():
        paths, flags = arguments(module)
        given = [a for a in argv if a != "${item}"]
        assert len(given) == len(paths), (module, given, paths)
        assert ("${item}" in argv) == bool(flags), module  # the matrix item's flags


def test_help_prints_the_usage_and_exits_0(tmp_path):
    ((code, out, err),) = run_all([stage("prepare", "-h")], tmp_path)
    assert code == 0 and err == "", err
    assert out.startswith("usage: python -m stages.prepare [-h] RAW_DIR OUT_DIR\n\nprepare: ")
    assert "positional arguments:\n  RAW_DIR\n  OUT_DIR\n" in out
    assert list(tmp_path.iterdir()) == []


SEARCH_FLAGS = ["--hidden_layers", "1", "--hidden_units", "8", "--learning_rate", "0.1",
                "--batch_size", "32", "--l2", "0"]


MISUSE = [  # (id, command, the error line after the usage)
    ("missing argument", stage("prepare", "raw"),
     "prepare: error: the following arguments are required: OUT_DIR"),
    ("one argument too many", stage("prepare", "raw", "out", "extra"),
     "prepare: error: unrecognized arguments: extra"),
    ("unknown option", stage("prepare", "raw", "out", "--subset"),
     "prepare: error: unrecognized arguments: --subset"),
    ("an option where a path belongs", stage("fetch", "--out"),
     "fetch: error: the following arguments are required: OUT_DIR"),
    ("missing flag", stage("search", "p", "m", "c", *SEARCH_FLAGS),
     "search: error: the following arguments are required: --activation"),
    ("unknown flag", stage("search", "p", "m", "c", *SEARCH_FLAGS, "--activation", "relu",
                           "--hidden-layers", "1"),
     "search: error: unrecognized arguments: --hidden-layers 1"),
    ("abbreviated flag", stage("search", "p", "m", "c", *SEARCH_FLAGS, "--activation", "relu",
                               "--l", "1"),
     "search: error: unrecognized arguments: --l 1"),
    ("the dvc stage's name, not the file's", stage("select_best", "x"),
     "select: error: the following arguments are required: CURVES_ROOT, METRICS_JSON, "
     "REPORT_JSON, RESULTS_CSV, RESULTS_PNG, BEST_DIR, OVERLAY_CSV, EFFECTS_JSON, EFFECTS_CSV"),
]


def test_a_wrong_command_line_prints_the_usage_and_one_error_exits_2_writes_nothing(tmp_path):
    for (name, command, line), (code, out, err) in zip(
            MISUSE, run_all([c for _, c, _ in MISUSE], tmp_path)):
        module = command[2].removeprefix("stages.")
        assert code == 2 and out == "" and "Traceback" not in err, (name, err)
        usage, error = err.rstrip("\n").rsplit("\n", 1)
        assert " ".join(usage.split()) == expected_usage(module), (name, err)
        assert error == line, name
    assert list(tmp_path.iterdir()) == []  # no --out, no raw/, no out/, no params read


def test_no_stage_file_shadows_a_standard_library_module():
    names = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert not names & sys.stdlib_module_names


def test_a_stage_runs_as_a_file_the_tutorial_way(tmp_path):
    results = run_all([[sys.executable, str(ROOT / "stages" / "select_best.py"), "--help"],
                       [sys.executable, str(ROOT / "stages" / "prepare.py"), "only-one"]],
                      tmp_path)
    (help_code, help_out, help_err), (code, out, err) = results
    assert help_code == 0 and help_out.startswith("usage: python -m stages.select_best [-h]"), \
        help_err
    assert code == 2 and "Traceback" not in err, err
    assert err == ("usage: python -m stages.prepare [-h] RAW_DIR OUT_DIR\n"
                   "prepare: error: the following arguments are required: OUT_DIR\n")
    assert list(tmp_path.iterdir()) == []
