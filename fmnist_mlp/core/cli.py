"""The command line every stage script shares: ``run`` parses its arguments, runs its ``main``
and turns every failure into one line and an exit code; ``log`` writes a line naming the
stage."""

from __future__ import annotations

import argparse
import inspect
import re
import signal
import sys
from pathlib import Path

from fmnist_mlp.core.errors import StudyError, os_error


def run(main, doc: str | None = None, options=None) -> None:
    """Run ``main`` as the stage ``python -m stages.<script>``, one path argument per parameter
    (``PREPARED_DIR`` for ``prepared_dir``); with ``options`` (the search stage's Trial), its
    flags too (``options.add_arguments(parser)``), passed to ``main`` as one last argument,
    ``options(**flags)``. ``-h``/``--help`` prints the usage and the docstring (exit 0); a wrong
    number of arguments or an unknown option, the usage and one error line (exit 2, before any
    work). Then one line on stderr for a StudyError, an operating-system error (a read-only or
    full disk...) or memory that runs out (exit 1), or Ctrl-C (exit 130). Every line names the
    stage as `dvc dag` does: the docstring's first word (``select: error: ...``)."""
    script = Path(sys.argv[0]).stem
    name = re.match(r"\w*", doc or "")[0] or script
    parser = argparse.ArgumentParser(prog=f"python -m stages.{script}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.error = lambda message: parser.exit(
        2, f"{parser.format_usage()}{name}: error: {message}\n")
    paths = list(inspect.signature(main).parameters)[:-1 if options else None]
    for path in paths:
        parser.add_argument(path, type=Path, metavar=path.upper())
    if options:
        options.add_arguments(parser)
    flags = vars(parser.parse_args())
    args = [flags.pop(path) for path in paths] + ([options(**flags)] if options else [])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C: KeyboardInterrupt below
    try:
        main(*args)
    except StudyError as e:
        sys.exit(f"{name}: error: {e}")
    except OSError as e:
        sys.exit(f"{name}: error: {os_error(e)}")
    except MemoryError as e:
        sys.exit(f"{name}: error: out of memory ({' '.join(str(e).split()) or 'MemoryError'}); "
                 f"lower the sizes in params.yaml")
    except KeyboardInterrupt:
        print(f"{name}: interrupted; partial outputs removed", file=sys.stderr)
        sys.exit(130)


def log(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr)
