# mlx-report developer tasks: make venv | sysdeps | test | report | bench | clean
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD := build
APT_LOG := /tmp/mlx-report-apt.log

# The report target runs this: the sample report as PDF and as self-contained HTML.
REPORT_CMD ?= $(VENV)/bin/mlx-report build samples/resnet.py --input 1,3,224,224 -o build/report.pdf && \
	$(VENV)/bin/mlx-report build samples/resnet.py --input 1,3,224,224 -o build/report.html

.PHONY: venv sysdeps test test-oldest report bench clean

venv: $(STAMP)

# Reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@{ $(VPY) -m pip install --disable-pip-version-check --upgrade pip && \
	   $(VPY) -m pip install --disable-pip-version-check -e '.[test]'; } > $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log >&2; echo "error: pip install failed (log: $(VENV)/install.log)" >&2; exit 1; }
	@touch $@
	@echo "venv ready: $(VENV)"

# Graphviz `dot`, fonts, Pango (WeasyPrint) and poppler (pdftotext, used by tests);
# never fails when it cannot install.
sysdeps:
	@if command -v dot >/dev/null 2>&1 && { [ "$$(uname -s)" = Darwin ] || \
	    { fc-list 2>/dev/null | grep -qi 'liberation' && command -v pdftotext >/dev/null 2>&1 && \
	      ldconfig -p 2>/dev/null | grep -q libpangoft2; }; }; then \
	  exit 0; \
	elif [ "$$(uname -s)" = Darwin ]; then \
	  if command -v brew >/dev/null 2>&1; then brew install graphviz pango poppler >/dev/null; \
	  else echo "warning: Graphviz 'dot' not found and Homebrew missing; install graphviz for diagrams" >&2; fi; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing graphviz and fonts (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update && apt-get install -y --no-install-recommends graphviz \
	    fonts-liberation2 fonts-dejavu-core libharfbuzz-subset0 poppler-utils \
	    libpango-1.0-0 libpangoft2-1.0-0; } > $(APT_LOG) 2>&1 \
	    || { cat $(APT_LOG) >&2; echo "warning: apt-get failed; diagrams need graphviz" >&2; }; \
	elif ! command -v dot >/dev/null 2>&1; then \
	  echo "warning: Graphviz 'dot' not found; install graphviz (e.g. apt-get install graphviz) for diagrams" >&2; \
	fi

test: venv sysdeps
	@$(VPY) -m pytest -q tests

# The suite on the oldest versions pyproject.toml allows (every `>=` bound pinned), in its
# own venv .venv-oldest; a few minutes to install, so not part of `make test` or CI.
OLDEST := .venv-oldest
test-oldest: sysdeps
	@test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	@$(PYTHON) .ci/lower_bounds.py > $(OLDEST)/constraints.txt
	@{ $(OLDEST)/bin/python -m pip install --disable-pip-version-check --upgrade pip && \
	   $(OLDEST)/bin/python -m pip install --disable-pip-version-check -c $(OLDEST)/constraints.txt -e '.[test]'; } \
	  > $(OLDEST)/install.log 2>&1 \
	  || { cat $(OLDEST)/install.log >&2; echo "error: pip install failed (log: $(OLDEST)/install.log)" >&2; exit 1; }
	@echo "oldest versions:" $$(tr '\n' ' ' < $(OLDEST)/constraints.txt)
	@$(OLDEST)/bin/python -m pytest -q -p no:cacheprovider tests

report: venv sysdeps
	@mkdir -p $(BUILD)
	$(REPORT_CMD)

# Side-by-side benchmark; the peers' environment bench/.venv-peers is created once and reused.
bench: venv
	@PYTHON=$(PYTHON) bash bench/setup_peers.sh
	@$(VPY) bench/run.py

clean:
	@rm -rf $(BUILD) .pytest_cache .hypothesis *.egg-info
	@find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Long fuzzing run (the suite runs the same properties with few examples).
.PHONY: fuzz
fuzz: venv
	FUZZ_EXAMPLES=2000 $(VPY) -m pytest -q tests/test_fuzz.py
