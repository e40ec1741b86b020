"""TensorFlow's C++ log lines go to a file; the stage's own lines and real errors still show."""

import subprocess
import sys
import textwrap

from fmnist_mlp.keras_search.native_log import severe_lines

CUINIT = "E0000 00:00:1.2 18827 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"
INFO = "I0000 00:00:1.1 18827 port.cc:153] oneDNN custom operations are on."
REAL = "E0000 00:00:1.3 18827 allocator.cc:1] something really broke"


def run_captured(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from fmnist_mlp.keras_search import native_log
        native_log.capture("stage", Path({str(tmp_path / "logs")!r}))
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(__import__("conftest").ROOT)})


def test_native_lines_go_to_the_log_and_python_lines_to_the_terminal(tmp_path):
    result = run_captured(tmp_path, f"""
        os.write(2, b"{INFO}\\n{CUINIT}\\n")
        print("stage: own line", file=sys.stderr)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "stage: own line\n"
    assert (tmp_path / "logs/stage.log").read_text() == f"{INFO}\n{CUINIT}\n"


def test_an_unknown_error_line_is_shown_at_exit_with_the_log(tmp_path):
    result = run_captured(tmp_path, f"""
        os.write(2, b"{CUINIT}\\n{REAL}\\n")
        raise SystemExit(3)
    """)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [f"tensorflow: {REAL}",
                                          "tensorflow: the whole log is in "
                                          f"{tmp_path / 'logs/stage.log'}"]


def test_a_python_traceback_still_reaches_the_terminal(tmp_path):
    result = run_captured(tmp_path, 'raise RuntimeError("boom")')
    assert "RuntimeError: boom" in result.stderr


def test_severe_lines_keep_errors_and_fatals_that_are_not_known():
    fatal = "F0000 00:00:1.4 1 check.cc:9] Check failed: x"
    assert severe_lines("\n".join([INFO, CUINIT, REAL, fatal, "W0000 x"])) == [REAL, fatal]
