# The two README commands are `make demo` and `make test`; each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

# Airflow runs locally with SQLite metadata under the git-ignored .local/ folder.
export AIRFLOW_HOME := $(CURDIR)/.local/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
# as in docker-compose.yml: a task's end is noticed within a second, not five
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL := 1

.PHONY: setup es airflow-db airflow demo test eval bench chaos soak lint stop clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[airflow,dev]'
	touch $@

es: setup
	$(BIN)/newsroom es start

airflow-db: setup
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/migrate.log; exit 1; }

# Airflow locally in one command: SQLite metadata, LocalExecutor, the API server (UI on
# http://localhost:8080, admin password printed on start), scheduler, dag-processor, triggerer.
airflow: es airflow-db
	$(BIN)/airflow standalone

demo: es airflow-db
	PATH="$(BIN):$$PATH" scripts/demo.sh

test: lint es airflow-db
	$(BIN)/pytest

# Quality on the team's evaluation data (tests/eval/); figures, not pass/fail.
eval: es
	$(BIN)/python -m tests.eval.evaluate

# Throughput figures, measured in one run so that their ratios hold on a noisy machine; then the
# load run: end to end over 2,000 and 10,000 generated pages, with peak memory (BENCH_LOAD_SIZES),
# copies polled before their originals, and Elasticsearch requests per article; then where the
# per-host limits set the pace: 50 hosts x 20 pages through `newsroom ingest` and through the DAG
# (LocalExecutor, with an API server of its own), and an idle poll of 200 feeds.
bench: es airflow-db
	$(BIN)/python -m tests.eval.bench
	$(BIN)/python -m tests.eval.load
	$(BIN)/python -m tests.eval.politeness

# The fault-injection suite at full budget (a 10,000-item feed, a 5 MB article page) against the
# local node: a table of each fault, what the product did, items lost and duplicates created.
chaos: es
	$(BIN)/python -m tests.chaos.suite

# Four concurrent workers with a SIGKILL and a reindex, and the DAG, checked against a serial run.
soak: es
	$(BIN)/python -m tests.chaos.soak

lint: setup
	$(BIN)/ruff check pipeline dags tests
	$(BIN)/mypy pipeline

stop:
	$(BIN)/newsroom es stop

clean: stop
	rm -rf .local $(VENV)
