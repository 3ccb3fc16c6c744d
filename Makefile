# Two commands on a fresh machine: `make demo` and `make test`. Both install first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= build/demo
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean browser servers

install: $(STAMP)

# Re-installs only when the dependency pins change; the project itself is editable.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" 
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	@touch $(STAMP)

demo: install
	$(BIN)/radar generate --accounts 2000 --months 24 --seed 7 --plays --out $(DEMO_DIR)/data
	$(BIN)/radar validate --data $(DEMO_DIR)/data
	$(BIN)/radar features --data $(DEMO_DIR)/data --out $(DEMO_DIR)/features
	$(BIN)/radar train --features $(DEMO_DIR)/features --promote \
		--tracking-uri sqlite:///$(DEMO_DIR)/mlflow.db
	$(BIN)/radar score --data $(DEMO_DIR)/data --as-of latest \
		--out $(DEMO_DIR)/scores.parquet --tracking-uri sqlite:///$(DEMO_DIR)/mlflow.db \
		--log $(DEMO_DIR)/predictions
	$(BIN)/radar explain --features $(DEMO_DIR)/features --global --out $(DEMO_DIR)/explain \
		--tracking-uri sqlite:///$(DEMO_DIR)/mlflow.db
	$(BIN)/radar effects --data $(DEMO_DIR)/data --out $(DEMO_DIR)/effects \
		--tracking-uri sqlite:///$(DEMO_DIR)/mlflow.db

# The page tests drive a real headless Chromium: Debian's package, installed here if missing.
browser:
	@command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# The engine tests start a real PostgreSQL server and Spark in local mode (on Java 17), which
# reads PostgreSQL through its JDBC driver: Debian's packages, installed here if missing.
SERVER_PACKAGES = postgresql openjdk-17-jre-headless libpostgresql-jdbc-java
servers:
	@(ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v java >/dev/null && \
		test -f /usr/share/java/postgresql.jar) || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $(SERVER_PACKAGES) || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(SERVER_PACKAGES))

# A test file's tests on one worker (xdist's default hands them out one by one: the first quarter
# of the suite alternately, so 20 slow modules ran their module fixtures, a PostgreSQL server, a
# Spark session, trained worlds, on both workers); files in the order tests/conftest.py sets.
test: install browser servers
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

bench: install
	@command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y wrk || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_score.py --features build/demo/features
	$(BIN)/python benchmarks/bench_serve.py --features build/demo/features

clean:
	rm -rf build .pytest_cache
