"""docker-compose.yml, checked without a Docker engine by a real Compose implementation.

The checker is compose-go (github.com/compose-spec/compose-go/v2), the Compose Specification's
reference loader and the library inside `docker compose`: a small Go program of ours
(tests/compose_check) that scripts/compose-check.sh builds on first use. It interpolates the
variables, validates against the specification's schema, normalises the model and checks its
consistency, then prints the normalised project as JSON, which the tests below read for what the
deployment promises: the services, Elasticsearch security, secrets only from `.env`, ports on
the loopback only, one image and one Elasticsearch connection for Airflow, and the start order;
and the `celery` profile (`--profile celery` with AIRFLOW_EXECUTOR=CeleryExecutor): Redis and N
Celery workers that get exactly what the scheduler's tasks get, without anything LocalExecutor
users run.

No `.env` is read: the variables named in .env.example get unique dummy values here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CHECK_SCRIPT = ROOT / "scripts" / "compose-check.sh"
CHECKER = ROOT / ".local" / "bin" / "compose-check"

AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer")
ONE_SHOTS = ("certs", "es-passwords", "setup", "airflow-init")
SERVICES = {"elasticsearch", "kibana", "postgres", *ONE_SHOTS, *AIRFLOW_SERVICES}
CELERY = "celery"  # the profile
CELERY_SERVICES = {"redis", "airflow-worker"}
# Settings (not secrets) the file takes from the environment, each with its default: `${VAR:-x}`.
SETTINGS = {"AIRFLOW_EXECUTOR": "LocalExecutor"}
PUBLISHED = {9200, 5601, 8080}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
SETUP_ENV = ("ELASTICSEARCH_URL", "ELASTICSEARCH_CA_CERTS", "ELASTICSEARCH_USERNAME",
             "ELASTICSEARCH_PASSWORD", "KIBANA_URL", "ANALYST_PASSWORD", "INGEST_PASSWORD",
             "MAINTENANCE_PASSWORD")
CA = "/certs/ca/ca.crt"  # where the services that run project code find the stack's CA

Project = dict[str, Any]


def env_example_names() -> list[str]:
    """The variable names .env.example lists (comments and blank lines aside)."""
    names = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and not value.strip(), f".env.example must give no value: {line!r}"
            names.append(name.strip())
    return names


SECRETS = env_example_names()
_RUN = uuid.uuid4().hex[:8]
DUMMY = {name: f"dummy-{name.lower().replace('_', '-')}-{_RUN}" for name in SECRETS}


def checker_env(values: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the secrets' or settings' names (a developer's shell
    may export them) or Compose's own settings, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if k not in DUMMY and k not in SETTINGS and not k.startswith("COMPOSE_")}
    return {**env, **values}


def run_checker(compose_file: Path, values: Mapping[str, str] = DUMMY,
                profiles: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    assert CHECKER.exists(), "the compose_checker fixture builds it"
    selected = [arg for name in profiles for arg in ("-profile", name)]
    return subprocess.run([str(CHECKER), "-workdir", str(ROOT), *selected, str(compose_file)],
                          env=checker_env(values), capture_output=True, text=True, timeout=60,
                          check=False)


def load(values: Mapping[str, str] = DUMMY, profiles: Sequence[str] = ()) -> Project:
    checked = run_checker(COMPOSE_FILE, values, profiles)
    assert checked.returncode == 0, f"Compose rejects docker-compose.yml:\n{checked.stderr}"
    loaded: Project = json.loads(checked.stdout)
    return loaded


@pytest.fixture(scope="module")
def compose_checker() -> Path:
    """Build the checker if needed (the first build fetches compose-go from the Go module proxy)."""
    built = subprocess.run(["bash", str(CHECK_SCRIPT)], capture_output=True, text=True,
                           timeout=900, check=False)
    assert built.returncode == 0, f"{CHECK_SCRIPT} failed:\n{built.stdout}\n{built.stderr}"
    return CHECKER


@pytest.fixture(scope="module")
def project(compose_checker: Path) -> Project:
    """docker-compose.yml as Compose normalises it (interpolated, anchors merged, defaults in)
    for `docker compose up`: no profile, no AIRFLOW_EXECUTOR."""
    return load()


@pytest.fixture(scope="module")
def celery_project(compose_checker: Path) -> Project:
    """The same for `AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up`."""
    return load({**DUMMY, "AIRFLOW_EXECUTOR": "CeleryExecutor"}, [CELERY])


@pytest.fixture(scope="module")
def raw() -> Project:
    """docker-compose.yml as written (variables not interpolated)."""
    loaded: Project = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def is_secret(key: str) -> bool:
    """A setting that holds a secret (a setting naming a secret's file holds a path)."""
    return bool(SECRET_WORDS.search(key)) and not key.upper().endswith("_FILE")


def service(project: Project, name: str) -> dict[str, Any]:
    found: dict[str, Any] = project["services"][name]
    return found


def environment(project: Project, name: str) -> dict[str, str]:
    env = service(project, name).get("environment") or {}
    return {key: value or "" for key, value in env.items()}


def argv(project: Project, name: str) -> list[str]:
    """The service's entrypoint (as overridden in the file) followed by its command."""
    svc = service(project, name)
    return [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]


def raw_environment(svc: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment` as written, in either of Compose's forms (list or mapping)."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --- the validator -------------------------------------------------------------------------------

def test_compose_accepts_the_file_and_every_service_is_there(project: Project) -> None:
    assert project["name"] == "newsroom"
    missing = SERVICES - set(project["services"])
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_env_example_names_exactly_the_variables_the_file_uses() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    secrets = used - set(SETTINGS)
    assert secrets == set(SECRETS), (
        f"only in docker-compose.yml: {sorted(secrets - set(SECRETS))}; "
        f"only in .env.example: {sorted(set(SECRETS) - secrets)}")
    required = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))
    assert required == secrets, f"use ${{VAR:?message}} for {sorted(secrets - required)}"
    # The settings are no secrets, are not in .env.example (whose one-line recipe would give them
    # random values), and have their defaults in the file.
    assert not set(SETTINGS) & set(SECRETS)
    for name, default in SETTINGS.items():
        assert not is_secret(name), name
        uses = set(re.findall(r"(?<!\$)\$\{" + name + r"([^}]*)\}", text))
        assert uses == {f":-{default}"}, f"{name}: {uses}"


def test_a_missing_secret_stops_compose_with_its_name(compose_checker: Path) -> None:
    without = {k: v for k, v in DUMMY.items() if k != "INGEST_PASSWORD"}
    checked = run_checker(COMPOSE_FILE, without)
    assert checked.returncode != 0
    assert "INGEST_PASSWORD" in checked.stderr


@pytest.mark.parametrize("breakage", ["depends_on_missing_service", "unknown_top_level_key",
                                      "misspelt_service_key"])
def test_compose_rejects_a_broken_copy(compose_checker: Path, tmp_path: Path,
                                       breakage: str) -> None:
    """The checker really checks: the same file with one deliberate error is refused."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    intact = tmp_path / "intact.yml"
    intact.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert run_checker(intact).returncode == 0, "the unbroken copy must pass"

    if breakage == "depends_on_missing_service":
        data["services"]["setup"]["depends_on"]["no-such-service"] = {
            "condition": "service_healthy"}
        expected = "no-such-service"
    elif breakage == "unknown_top_level_key":
        data["servics"] = {"typo": {"image": "busybox"}}
        expected = "servics"
    else:
        data["services"]["kibana"]["heathcheck"] = data["services"]["kibana"].pop("healthcheck")
        expected = "heathcheck"
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    checked = run_checker(broken)
    assert checked.returncode != 0, f"Compose accepted a file with {breakage}"
    assert expected in checked.stderr


# --- what the deployment promises ----------------------------------------------------------------

def test_elasticsearch_runs_single_node_with_security_on(project: Project) -> None:
    env = environment(project, "elasticsearch")
    assert env["xpack.security.enabled"] == "true"
    assert env["discovery.type"] == "single-node"
    assert env["ELASTIC_PASSWORD"] == DUMMY["ELASTIC_PASSWORD"]
    assert service(project, "es-passwords")["image"] == (
        "docker.elastic.co/elasticsearch/elasticsearch:9.2.8")
    assert service(project, "kibana")["image"] == "docker.elastic.co/kibana/kibana:9.2.8"
    kibana = environment(project, "kibana")
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert kibana["ELASTICSEARCH_PASSWORD"] == DUMMY["KIBANA_PASSWORD"]
    assert any(v["target"] == "/usr/share/elasticsearch/data" and v["type"] == "volume"
               for v in service(project, "elasticsearch")["volumes"])


def test_elasticsearch_is_the_official_image_with_the_analysis_plugin(project: Project) -> None:
    """The node docker-compose runs has the analyzers the article mapping names, built from the
    sources the local node's plugin comes from, for the same Elasticsearch version."""
    from pipeline.localnode import ES_VERSION, PLUGIN_SOURCE, LocalNode

    build = service(project, "elasticsearch")["build"]
    assert Path(build["context"]) == PLUGIN_SOURCE
    assert build["args"]["ES_VERSION"] == ES_VERSION
    dockerfile = (PLUGIN_SOURCE / "Dockerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    assert args["ES_VERSION"] == ES_VERSION
    assert "FROM docker.elastic.co/elasticsearch/elasticsearch:${ES_VERSION}" in dockerfile
    assert re.search(r"RUN bin/elasticsearch-plugin install --batch file://\S+\.zip", dockerfile)
    # the image's plugin is built on the Lucene of the local node (the same distribution)
    assert (LocalNode.from_env().home / "lib" / f"lucene-core-{args['LUCENE_VERSION']}.jar"
            ).exists()
    mapping = (ROOT / "config" / "mappings" / "articles.json").read_text(encoding="utf-8")
    for analyzer in re.findall(r'"type": "(newsroom_\w+)"', mapping):
        assert f'@NamedComponent("{analyzer}")' in "".join(
            path.read_text(encoding="utf-8") for path in PLUGIN_SOURCE.rglob("*.java"))


def mounts(project: Project, name: str) -> dict[str, tuple[str, bool]]:
    """The service's volume mounts: target -> (volume, read-only)."""
    return {v["target"]: (v.get("source", ""), bool(v.get("read_only")))
            for v in service(project, name).get("volumes") or []}


def test_elasticsearch_speaks_https_with_certificates_the_stack_makes(project: Project) -> None:
    env = environment(project, "elasticsearch")
    assert env["xpack.security.http.ssl.enabled"] == "true"
    assert env["xpack.security.http.ssl.key"] == "certs/elasticsearch/elasticsearch.key"
    assert env["xpack.security.http.ssl.certificate"] == "certs/elasticsearch/elasticsearch.crt"
    assert env["xpack.security.http.ssl.certificate_authorities"] == "certs/ca/ca.crt"
    # the one-shot `certs` makes them with the image's certutil, for the names clients use
    made = " ".join(argv(project, "certs"))
    assert "elasticsearch-certutil ca" in made and "elasticsearch-certutil cert" in made
    assert "dns: [elasticsearch, localhost]" in made
    assert depends(project, "elasticsearch")["certs"] == "service_completed_successfully"
    assert mounts(project, "certs")["/usr/share/elasticsearch/config/certs"] == ("certs", False)
    assert mounts(project, "elasticsearch")["/usr/share/elasticsearch/config/certs"] == (
        "certs", True)
    # every client reaches it over https and checks its certificate against that CA
    assert "https://localhost:9200" in " ".join(service(project, "elasticsearch")
                                                ["healthcheck"]["test"])
    assert "--cacert config/certs/ca/ca.crt" in " ".join(service(project, "elasticsearch")
                                                         ["healthcheck"]["test"])
    assert "--cacert" in " ".join(argv(project, "es-passwords"))
    assert "https://elasticsearch:9200" in " ".join(argv(project, "es-passwords"))
    kibana = environment(project, "kibana")
    assert kibana["ELASTICSEARCH_HOSTS"] == "https://elasticsearch:9200"
    assert kibana["ELASTICSEARCH_SSL_CERTIFICATEAUTHORITIES"] == "config/certs/ca/ca.crt"
    assert mounts(project, "kibana")["/usr/share/kibana/config/certs"] == ("certs", True)
    setup = environment(project, "setup")
    assert setup["ELASTICSEARCH_URL"].startswith("https://")
    assert setup["ELASTICSEARCH_CA_CERTS"] == CA
    for name in ("setup", *AIRFLOW_SERVICES):
        assert mounts(project, name).get("/certs") == ("certs", True), name
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "http://elasticsearch:9200" not in text and "http://localhost:9200" not in text


def test_every_secret_comes_from_a_variable(project: Project, celery_project: Project,
                                           raw: Project) -> None:
    # As written: every secret-looking setting is a ${...} reference, never a literal.
    for name, svc in raw["services"].items():
        for key, value in raw_environment(svc).items():
            if is_secret(key):
                assert "${" in value, f"{name}: {key} is a literal, not a ${{...}} variable"
    # As Compose resolves it: each one carries one of the .env values, and every .env value
    # reaches at least one service.
    # The same with the celery profile, which needs no secret of its own.
    for loaded in (project, celery_project):
        reached: set[str] = set()
        for name in loaded["services"]:
            for key, value in environment(loaded, name).items():
                carried = {secret for secret, dummy in DUMMY.items() if dummy in value}
                if is_secret(key):
                    assert carried, f"{name}: {key} does not come from .env"
                reached |= carried
        assert reached == set(SECRETS), f"never used: {sorted(set(SECRETS) - reached)}"
    airflow = environment(project, "airflow-scheduler")
    assert DUMMY["POSTGRES_PASSWORD"] in airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert airflow["AIRFLOW__API_AUTH__JWT_SECRET"] == DUMMY["AIRFLOW_JWT_SECRET"]
    assert airflow["AIRFLOW__CORE__FERNET_KEY"] == DUMMY["AIRFLOW_FERNET_KEY"]  # never empty
    assert environment(project, "postgres")["POSTGRES_PASSWORD"] == DUMMY["POSTGRES_PASSWORD"]


def test_no_password_on_a_command_line(raw: Project) -> None:
    # a command's arguments are visible to every process on the host (ps, /proc): passwords
    # reach curl through its standard input (`-K -`), never as `-u user:password`
    for name, svc in raw["services"].items():
        commands = [svc.get("command"), (svc.get("healthcheck") or {}).get("test")]
        for command in commands:
            text = json.dumps(command) if command is not None else ""
            assert not re.search(r"(-u|--user)\s+\\?\"?[\w.-]*:\$", text), (
                f"{name}: a password on the command line: {text[:200]}")


def test_published_ports_bind_the_loopback_only(project: Project,
                                                celery_project: Project) -> None:
    for loaded in (project, celery_project):
        published: set[int] = set()
        for name, svc in loaded["services"].items():
            for port in svc.get("ports") or []:
                assert port.get("host_ip") == "127.0.0.1", (
                    f"{name} publishes {port} beyond 127.0.0.1")
                published.add(int(port["published"]))
        # Redis and the workers publish nothing (the workers could not scale if they did)
        assert published == PUBLISHED


def test_airflow_services_share_the_image_and_the_elasticsearch_connection(
        project: Project) -> None:
    image = service(project, "setup")["image"]
    assert service(project, "setup")["build"]["context"] == str(ROOT)
    conns = set()
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        svc = service(project, name)
        assert svc["image"] == image and svc["build"]["context"] == str(ROOT), name
        env = environment(project, name)
        assert env["NEWSROOM_ES_CONN_ID"] == "newsroom_es", name
        assert env["NEWSROOM_ES_MAINTENANCE_CONN_ID"] == "newsroom_es_maintenance", name
        conns.add((env["AIRFLOW_CONN_NEWSROOM_ES"], env["AIRFLOW_CONN_NEWSROOM_ES_MAINTENANCE"]))
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
            "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"), name
        assert not [key for key in env if "SIMPLE_AUTH_MANAGER" in key], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
            "postgresql+psycopg2://airflow:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-api-server:8080/execution/"), name
    assert len(conns) == 1, "the Airflow services disagree on their Elasticsearch connections"
    ingest, maintenance = (json.loads(conn) for conn in conns.pop())
    assert ingest == {"conn_type": "generic", "host": "elasticsearch", "port": 9200,
                      "schema": "https", "login": "newsroom_ingest",
                      "password": DUMMY["INGEST_PASSWORD"], "extra": {"ca_certs": CA}}
    assert maintenance == {**ingest, "login": "newsroom_maintenance",
                           "password": DUMMY["MAINTENANCE_PASSWORD"]}
    for name, subcommand in zip(AIRFLOW_SERVICES,
                                ("api-server", "scheduler", "dag-processor", "triggerer")):
        assert f"airflow {subcommand}" in " ".join(argv(project, name)), name
    init = " ".join(argv(project, "airflow-init"))
    assert "airflow db migrate && python /opt/airflow/newsroom/scripts/airflow_admin.py" in init
    assert environment(project, "airflow-init")["AIRFLOW_ADMIN_PASSWORD"] == (
        DUMMY["AIRFLOW_ADMIN_PASSWORD"])
    assert "COPY --chown=airflow:root scripts/airflow_admin.py scripts/" in (
        ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_image_is_the_official_airflow_image_with_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert args["PYTHON_VERSION"] == "3.11"
    pinned = re.search(r"^apache-airflow==(\S+)$",
                       (ROOT / "constraints.txt").read_text(encoding="utf-8"), re.MULTILINE)
    assert pinned and args["AIRFLOW_VERSION"] == pinned.group(1), (
        "the image's Airflow differs from the one constraints.txt pins for development")
    assert "COPY --chown=airflow:root dags/ /opt/airflow/dags/" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".local", ".git", ".env"} <= set(ignored)


def test_setup_runs_newsroom_setup_with_its_settings(project: Project) -> None:
    command = argv(project, "setup")
    assert any(command[i:i + 2] == ["newsroom", "setup"] for i in range(len(command))), command
    env = environment(project, "setup")
    assert set(SETUP_ENV) <= set(env)
    assert env["ELASTICSEARCH_URL"] == "https://elasticsearch:9200"
    assert env["KIBANA_URL"] == "http://kibana:5601"
    assert env["ELASTICSEARCH_PASSWORD"] == DUMMY["ELASTIC_PASSWORD"]
    assert env["ANALYST_PASSWORD"] == DUMMY["ANALYST_PASSWORD"]
    assert env["INGEST_PASSWORD"] == DUMMY["INGEST_PASSWORD"]
    assert env["MAINTENANCE_PASSWORD"] == DUMMY["MAINTENANCE_PASSWORD"]


def depends(project: Project, name: str) -> dict[str, str]:
    return {target: spec["condition"]
            for target, spec in (service(project, name).get("depends_on") or {}).items()}


def test_services_start_in_order(project: Project, celery_project: Project) -> None:
    assert depends(project, "es-passwords")["elasticsearch"] == "service_healthy"
    assert depends(project, "kibana")["es-passwords"] == "service_completed_successfully"
    assert depends(project, "setup")["kibana"] == "service_healthy"
    assert depends(project, "airflow-init")["postgres"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        after = depends(project, name)
        assert after.get("airflow-init") == "service_completed_successfully", name
        assert after.get("setup") == "service_completed_successfully", name
    # What is waited on must be able to get there: a healthcheck, or a one-shot that ends.
    for loaded in (project, celery_project):
        for name in loaded["services"]:
            for target, condition in depends(loaded, name).items():
                if condition == "service_healthy":
                    check = service(loaded, target).get("healthcheck") or {}
                    assert check.get("test") and not check.get("disable"), (
                        f"{target}: no healthcheck")
                if condition == "service_completed_successfully":
                    assert target in ONE_SHOTS, f"{name} waits for {target} to exit"
    for name in ONE_SHOTS:
        assert service(project, name).get("restart", "no") == "no", name
    assert "/api/status" in " ".join(service(project, "kibana")["healthcheck"]["test"])


# --- the celery profile --------------------------------------------------------------------------

def test_without_the_profile_there_is_no_redis_and_no_worker(project: Project) -> None:
    """`docker compose up` runs what it ran before: LocalExecutor, and nothing needs Redis."""
    assert set(project["services"]) == SERVICES
    for name in project["services"]:
        assert not CELERY_SERVICES & set(depends(project, name)), name
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        assert environment(project, name)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name


def test_the_celery_profile_adds_redis_and_the_workers(celery_project: Project,
                                                       raw: Project) -> None:
    assert set(celery_project["services"]) == SERVICES | CELERY_SERVICES
    for name in CELERY_SERVICES:
        assert raw["services"][name]["profiles"] == [CELERY], name
    for name in SERVICES:
        assert "profiles" not in raw["services"][name], name
    # the executor is one setting shared by every Airflow service
    assert raw["x-airflow-env"]["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    for name in ("airflow-init", "airflow-worker", *AIRFLOW_SERVICES):
        assert environment(celery_project, name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", (
            name)


def test_redis_is_the_official_image_pinned_and_reachable_on_the_compose_network_only(
        celery_project: Project) -> None:
    redis = service(celery_project, "redis")
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+(-[a-z0-9.]+)?", redis["image"]), redis["image"]
    assert "build" not in redis
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert not redis.get("ports")
    assert redis.get("restart") == "unless-stopped"


def test_celery_queues_in_redis_and_keeps_results_in_postgres(celery_project: Project) -> None:
    for name in ("airflow-worker", *AIRFLOW_SERVICES):
        env = environment(celery_project, name)
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        # the metadata database, with the same credentials as Airflow's own URL
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
            f"db+postgresql://airflow:{DUMMY['POSTGRES_PASSWORD']}@postgres:5432/airflow"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+postgresql://") == (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("postgresql+psycopg2://"))


def test_a_worker_gets_what_the_scheduler_gives_its_tasks(project: Project,
                                                          celery_project: Project) -> None:
    """With LocalExecutor the scheduler runs the tasks; a worker takes them over with the same
    image, settings, Elasticsearch connections, CA and logs."""
    worker = service(celery_project, "airflow-worker")
    scheduler = service(celery_project, "airflow-scheduler")
    assert worker["image"] == scheduler["image"] == service(project, "airflow-scheduler")["image"]
    assert worker["build"] == scheduler["build"]
    env = environment(celery_project, "airflow-worker")
    assert env.pop("DUMB_INIT_SETSID") == "0"  # a warm shutdown lets running tasks finish
    assert env == environment(celery_project, "airflow-scheduler")
    assert {**env, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"} == environment(
        project, "airflow-scheduler")
    assert env["NEWSROOM_ES_CONN_ID"] == "newsroom_es"
    assert env["NEWSROOM_ES_MAINTENANCE_CONN_ID"] == "newsroom_es_maintenance"
    assert json.loads(env["AIRFLOW_CONN_NEWSROOM_ES"])["extra"] == {"ca_certs": CA}
    assert mounts(celery_project, "airflow-worker") == mounts(project, "airflow-scheduler")
    assert mounts(celery_project, "airflow-worker")["/certs"] == ("certs", True)
    assert mounts(celery_project, "airflow-worker")["/opt/airflow/logs"] == ("airflow-logs", False)


def test_workers_scale_and_start_after_what_they_need(celery_project: Project) -> None:
    worker = service(celery_project, "airflow-worker")
    # `--scale airflow-worker=N` needs no fixed name and no published port
    assert "container_name" not in worker and not worker.get("ports")
    assert "exec airflow celery worker" in " ".join(argv(celery_project, "airflow-worker"))
    assert depends(celery_project, "airflow-worker") == {
        "redis": "service_healthy", "postgres": "service_healthy",
        "airflow-init": "service_completed_successfully",
        "setup": "service_completed_successfully", "airflow-api-server": "service_healthy"}
    health = " ".join(worker["healthcheck"]["test"])
    assert health.startswith("CMD-SHELL celery --app "
                             "airflow.providers.celery.executors.celery_executor.app inspect ping")
    assert '-d "celery@${HOSTNAME}"' in health  # this worker, not any
    assert worker.get("restart") == "unless-stopped"


def run_command(loaded: Project, name: str, up: Sequence[str],
                tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a service's `bash -c` command here with the environment Compose gives it, and stand-ins
    for what its container has: `airflow` says what it would run, `getent hosts NAME` finds the
    services in `up` only, and `sleep` returns at once."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stubs = {"airflow": 'echo "airflow $*"',
             "getent": '[[ $1 == hosts && " $UP " == *" $2 "* ]]',
             "sleep": "exit 0"}
    for tool, body in stubs.items():
        stub = bin_dir / tool
        stub.write_text(f"#!/usr/bin/env bash\n{body}\n", encoding="utf-8")
        stub.chmod(0o755)
    command = argv(loaded, name)
    assert command[:2] == ["bash", "-c"], command
    env = {**environment(loaded, name), "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "UP": " ".join(up)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30,
                          check=False)


def test_a_worker_refuses_to_wait_for_tasks_the_scheduler_runs_itself(
        celery_project: Project, tmp_path: Path) -> None:
    ran = run_command(celery_project, "airflow-worker", ["redis"], tmp_path)
    assert ran.returncode == 0 and ran.stdout.strip() == "airflow celery worker", ran.stderr
    # `--profile celery` without AIRFLOW_EXECUTOR: the workers would sit idle under LocalExecutor
    profile_only = load(DUMMY, [CELERY])
    assert environment(profile_only, "airflow-scheduler")["AIRFLOW__CORE__EXECUTOR"] == (
        "LocalExecutor")
    ran = run_command(profile_only, "airflow-worker", ["redis"], tmp_path)
    assert ran.returncode == 1 and not ran.stdout
    assert "AIRFLOW_EXECUTOR=CeleryExecutor" in ran.stderr


def test_the_scheduler_refuses_an_executor_the_running_services_do_not_match(
        project: Project, celery_project: Project, tmp_path: Path) -> None:
    # as shipped, and with the celery profile and its executor: it starts
    ran = run_command(project, "airflow-scheduler", [], tmp_path)
    assert ran.returncode == 0 and ran.stdout.strip() == "airflow scheduler", ran.stderr
    ran = run_command(celery_project, "airflow-scheduler", ["redis", "airflow-worker"], tmp_path)
    assert ran.returncode == 0 and ran.stdout.strip() == "airflow scheduler", ran.stderr
    # LocalExecutor while workers run (say, a later `docker compose up -d` without
    # AIRFLOW_EXECUTOR): they would sit idle while the scheduler ran every task
    ran = run_command(project, "airflow-scheduler", ["redis", "airflow-worker"], tmp_path)
    assert ran.returncode == 1 and not ran.stdout
    assert "sit idle" in ran.stderr and "AIRFLOW_EXECUTOR=CeleryExecutor" in ran.stderr
    # CeleryExecutor without the profile: tasks would be queued where nothing takes them
    no_profile = load({**DUMMY, "AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert not CELERY_SERVICES & set(no_profile["services"])
    ran = run_command(no_profile, "airflow-scheduler", [], tmp_path)
    assert ran.returncode == 1 and not ran.stdout
    assert "--profile celery" in ran.stderr
