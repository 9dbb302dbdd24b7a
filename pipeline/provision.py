"""provision: what `newsroom setup` puts in place on a cluster (the docker-compose stack's
one-shot `setup` service, or an operator by hand): the indices, the roles and users of
`config/security/roles.json` when the cluster has security on, and Kibana's saved objects.
Idempotent: run it again after an upgrade."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from elasticsearch import ApiError, Elasticsearch

from pipeline.settings import ConfigError, Settings
from pipeline.store import ensure_indices

# The users `setup` creates, their role, and the environment variable with their password.
USERS = {"analyst": ("newsroom_analyst", "ANALYST_PASSWORD"),
         "newsroom_ingest": ("newsroom_ingest", "INGEST_PASSWORD"),
         "newsroom_maintenance": ("newsroom_maintenance", "MAINTENANCE_PASSWORD")}


def load_roles(config_dir: Path) -> dict[str, dict[str, Any]]:
    raw = json.loads((config_dir / "security" / "roles.json").read_text(encoding="utf-8"))
    return {name: body for name, body in raw.items() if not name.startswith("_")}


def security_enabled(es: Elasticsearch) -> bool:
    """Whether the cluster has the security feature on (the minimal local node has none)."""
    try:
        es.security.authenticate()
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405, 410, 500) and "security" in str(exc).lower():
            return False
        raise
    return True


def ensure_security(es: Elasticsearch, settings: Settings,
                    environ: Mapping[str, str]) -> list[str]:
    """Create or update the roles and the users (passwords from the environment); the names
    of the users written. A user whose password variable is unset is skipped."""
    for name, body in load_roles(settings.config_dir).items():
        es.security.put_role(name=name, **body)
    written = []
    for user, (role, variable) in USERS.items():
        password = environ.get(variable)
        if password:
            es.security.put_user(username=user, password=password, roles=[role])
            written.append(user)
    return written


def import_saved_objects(kibana_url: str, settings: Settings,
                         auth: tuple[str, str] | None) -> dict[str, Any]:
    """Import `config/kibana/saved_objects.ndjson` through Kibana's saved objects API,
    overwriting the objects of the same ids; Kibana's answer (`success`, `successCount`)."""
    path = settings.config_dir / "kibana" / "saved_objects.ndjson"
    response = httpx.post(
        f"{kibana_url.rstrip('/')}/api/saved_objects/_import",
        params={"overwrite": "true"}, headers={"kbn-xsrf": "newsroom"}, auth=auth,
        files={"file": (path.name, path.read_bytes(), "application/ndjson")}, timeout=60)
    if response.status_code != 200:
        raise ConfigError(f"Kibana at {kibana_url} refused the saved objects: "
                          f"HTTP {response.status_code} {response.text[:300]}")
    result: dict[str, Any] = response.json()
    if not result.get("success"):
        raise ConfigError(f"Kibana imported the saved objects with errors: "
                          f"{json.dumps(result.get('errors'))[:500]}")
    return result


def setup(es: Elasticsearch, settings: Settings, environ: Mapping[str, str]) -> dict[str, Any]:
    """Indices; roles and users when security is on; Kibana objects when KIBANA_URL is set."""
    ensure_indices(es, settings)
    report: dict[str, Any] = {"indices": True, "security": False, "users": [], "kibana": None}
    if security_enabled(es):
        report["security"] = True
        report["users"] = ensure_security(es, settings, environ)
    if environ.get("KIBANA_URL"):
        auth = ((settings.elasticsearch_username, settings.elasticsearch_password or "")
                if settings.elasticsearch_username else None)
        result = import_saved_objects(environ["KIBANA_URL"], settings, auth)
        report["kibana"] = result.get("successCount")
    return report
