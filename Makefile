# The README's two commands: `make repro` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET_DIR := /usr/share/datasets/fashion-mnist
# The venv first on PATH: the stages run `python -m stages.<name>`.
RUN := PATH=$(CURDIR)/$(BIN):$$PATH

PLOTS_PAGE := .dvc/plots_page.html
.PHONY: setup dataset browser repro test test-slow lint bench mutate verify exp exp-show search-cluster lock clean

# Exactly the pinned packages (requirements.lock); the venv is rebuilt whenever the lock changes.
# uv, pinned in the lock like every other package, is installed first with pip, then `uv pip
# sync` makes the venv exactly the lock (no resolution: what is not listed is removed, nothing
# else comes in), then the project in editable mode, without its dependencies.
$(BIN)/activate: requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps "$$(grep -x 'uv==[^ ]*' requirements.lock)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(BIN)/activate

# The Debian package when we can install it; otherwise the fetch stage tries the mirror.
dataset:
	@if [ -d $(DATASET_DIR) ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
		|| echo "make: apt-get install dataset-fashion-mnist failed; fetch will try the mirror"; \
	else echo "make: not root or no apt-get; fetch will try the mirror"; fi

# `dvc plots show` offline: vega, vega-lite and vega-embed (vl-convert-python's bundle) inline
# in DVC's HTML template.
$(PLOTS_PAGE): fmnist_mlp/engine/plots_page.py requirements.lock | $(BIN)/activate
	$(BIN)/python -m fmnist_mlp.engine.plots_page $@
	$(BIN)/dvc config --local plots.html_template plots_page.html

# Debian's Chromium for the test that renders `dvc plots show` headless (skipped without it).
browser:
	@if command -v chromium >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "make: apt-get install chromium failed; the plots page test will be skipped"; \
	else echo "make: not root or no apt-get; the plots page test will be skipped"; fi

# Debian's OpenSSH server for the test that runs the cluster path against an ssh:// DVC remote
# (the test starts its own sshd on loopback, skipped without one); nothing is started here.
.PHONY: openssh-server
openssh-server:
	@if [ -x /usr/sbin/sshd ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server) \
		>/dev/null 2>&1 || echo "make: apt-get install openssh-server failed; the SSH remote test will be skipped (fail with CI set)"; \
	else echo "make: not root or no apt-get; the SSH remote test will be skipped (fail with CI set)"; fi

setup: $(BIN)/activate $(PLOTS_PAGE) dataset

# The search's items side by side on every core, then `dvc repro` (fmnist_mlp/engine/repro.py).
repro: setup
	$(RUN) python -m fmnist_mlp.engine.repro
	$(RUN) dvc metrics show

# Every core (pytest-xdist); the slow tests (Dask clusters, an OpenSSH server, Chromium, whole pipeline reruns) run in CI: make test-slow.
test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(RUN) $(BIN)/pytest -q -n auto --dist worksteal

test-slow: setup browser openssh-server
	$(RUN) $(BIN)/pytest -q -m slow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: setup
	$(RUN) python -m bench.scratch_epoch

# Mutation testing, a report like a bench (not in CI): the survivors, then `mutation score S %`.
mutate: setup
	$(RUN) python -m bench.mutation

# Rerun every stage (no cache): the committed outputs must come back byte for byte (dvc.lock
# holds every output's hash, so git sees no change) and DVC must find the workspace up to date.
verify: setup
	$(RUN) dvc repro --force
	$(RUN) dvc status --quiet || { echo "make verify: dvc status: not up to date" >&2; exit 1; }
	git diff --exit-code --stat && echo "make verify: every committed output reproduced byte for byte"

# An experiment, e.g. make exp ARGS="-S scratch.epochs=40 -n more-epochs"; params.yaml is put
# back as it was if the experiment fails.
exp: setup
	@cp params.yaml .params.yaml.bak
	@$(RUN) dvc exp run $(ARGS) || { status=$$?; mv .params.yaml.bak params.yaml; \
		echo "make exp: the experiment failed (exit $$status); params.yaml restored, dvc repro restores the outputs" >&2; \
		exit $$status; }
	@rm -f .params.yaml.bak

# The experiments side by side: the params and metrics that differ between them, as a table.
exp-show: setup
	@$(RUN) dvc exp show --md --only-changed --drop '^(data|models|plots|stages|fmnist_mlp)/'

# The search's items on a Dask cluster's workers, each in a clone sharing a DVC remote, then the
# rest here (the same engine as make repro): REMOTE=<DVC remote name>,
# SCHEDULER=tls://HOST:8786 (default: a local cluster of this machine).
search-cluster: setup
	@test -n "$(REMOTE)" || { echo "make search-cluster: set REMOTE=<a DVC remote's name>" \
		"(dvc remote add -d NAME URL)" >&2; exit 2; }
	$(RUN) python -m fmnist_mlp.engine.repro --remote $(REMOTE) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

# Pin the packages of the current venv (after changing pyproject.toml's dependencies).
lock: setup
	{ sed -n '1,3p' requirements.lock; echo "pip==$$($(BIN)/pip --version | cut -d' ' -f2)"; \
	  $(BIN)/pip freeze --all --exclude pip --exclude-editable | sort -f; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache timings mutants
