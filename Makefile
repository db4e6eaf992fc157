# Everything a fresh machine needs: `make test` and (with the training engine) `make demo`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp

.PHONY: setup browser-deps test lint format demo clean

setup: $(STAMP)

# Re-runs only when pyproject.toml changes; torch and torchvision are pinned as a matching pair.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One pytest-xdist worker per core, one torch thread each (tests/conftest.py); a test file stays
# on one worker so that its module fixtures are built once.
PYTEST_ARGS ?= -n auto --dist loadfile --durations=25

# Debian's chromium and chromium-driver for the browser test of the serving page
# (tests/serve/test_web_page.py), installed only when missing and only where apt-get can run (root);
# elsewhere this does nothing and that test skips, saying what is missing.
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "browser-deps: no chromium/chromedriver and no root apt-get: the browser test will skip"; fi

test: setup lint browser-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# A real end-to-end run on the built-in dataset: matcher pretraining, GAN training (a fixed
# wall-clock budget), evaluation by the shapes oracle, report.html.
demo: setup
	@if [ -d runs/grgan-demo ]; then mv runs/grgan-demo runs/grgan-demo.$$(date +%Y%m%d-%H%M%S); fi
	$(VENV)/bin/t2i-stages run recipes/grgan.yaml --out runs/grgan-demo
	@echo "open runs/grgan-demo/report.html"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
