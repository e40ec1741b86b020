"""Every stage script as a user meets it: -h/--help with the full usage, an option-like word is
never taken for a path, `python stages/<name>.py` works, and no file shadows the stdlib."""

import os
import re
import subprocess
import sys

import yaml
from conftest import ROOT


def stage_modules() -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
    return [re.search(r"python -m stages\.(\w+)", s["cmd"])[1] for s in stages]


def run_all(commands, cwd):
    """Start every command at once (each loads numpy or more), then collect them; the
    repository is importable from any ``cwd``, as under `dvc repro`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    processes = [subprocess.Popen(c, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for c in commands]
    return [(p.wait(120), *p.communicate()) for p in processes]


def full_usage(module: str) -> list[str]:
    """The words of the docstring's usage: every argument of the stage's main appears."""
    doc = (ROOT / "stages" / f"{module}.py").read_text()
    (usage,) = re.findall(r"^Usage: (python -m stages\.\w+ .*?)\n(?! )", doc, re.S | re.M)
    return usage.split()


def test_every_stage_answers_help_with_its_full_usage_and_writes_nothing(tmp_path):
    modules = stage_modules()
    commands = [[sys.executable, "-m", f"stages.{m}", flag] for m in modules
                for flag in ("-h", "--help")]
    for (code, out, err), module in zip(run_all(commands, tmp_path),
                                        [m for m in modules for _ in range(2)]):
        assert code == 0, (module, err)
        words = " ".join(out.split())
        assert " ".join(full_usage(module)) in words, (module, out)
        assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no directory named --help


def test_every_argument_of_main_is_in_the_usage():
    for module in stage_modules():
        source = (ROOT / "stages" / f"{module}.py").read_text()
        (signature,) = re.findall(r"^def main\((.*?)\) -> None:", source, re.S | re.M)
        if "*argv" in signature:
            continue  # parses its own flags (search)
        params = [p.split(":")[0].strip() for p in signature.split(",") if p.strip()]
        args = [w for w in full_usage(module)[3:] if w.isupper() or "_" in w]
        assert len(args) == len(params), (module, args, params)


def test_an_option_like_word_is_never_a_path(tmp_path):
    ((code, out, err),) = run_all([[sys.executable, "-m", "stages.fetch", "--out"]], ROOT)
    assert code == 2 and err.count("\n") == 1, err
    assert "fetch: error: unknown option --out (paths only). Usage: python -m stages.fetch" in err
    assert not (ROOT / "--out").exists()


def test_no_stage_file_shadows_a_standard_library_module():
    names = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert not names & sys.stdlib_module_names


def test_a_stage_runs_as_a_file_the_tutorial_way():
    results = run_all([[sys.executable, str(ROOT / "stages" / "select_best.py"), "--help"],
                       [sys.executable, str(ROOT / "stages" / "prepare.py"), "only-one"]], ROOT)
    (help_code, help_out, help_err), (code, out, err) = results
    assert help_code == 0 and "Usage: python -m stages.select_best" in help_out, help_err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("prepare: error: expected 2 arguments, got 1. Usage: python -m "
                          "stages.prepare RAW_DIR OUT_DIR")


def test_messages_name_the_dvc_stage_not_the_file():
    from fmnist_mlp.core.runner import stage_name

    assert stage_name((ROOT / "stages" / "select_best.py").read_text().strip('"')) == "select"
