"""Elasticsearch's role model, as far as the tests need it: index name patterns, which
privileges a granted one includes, and which privileges a request needs. The local node runs
without the security module, so tests/test_roles.py judges config/security/roles.json with these
and tests/test_role_access.py enforces a role on the real node's traffic through a proxy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROLES_FILE = Path(__file__).resolve().parent.parent / "config" / "security" / "roles.json"

# Index privileges that change data, mappings, settings or the index itself.
WRITE_PRIVILEGES = frozenset({
    "all", "auto_configure", "create", "create_doc", "create_index", "delete", "delete_index",
    "index", "maintenance", "manage", "manage_data_stream_lifecycle", "manage_failure_store",
    "manage_follow_index", "manage_ilm", "manage_leader_index", "write",
})
# The only index privileges an analyst role may hold.
READ_ONLY_PRIVILEGES = frozenset({"read", "view_index_metadata", "monitor", "read_cross_cluster"})

# Which privileges a granted privilege includes (the subset these tests need).
IMPLIES: dict[str, frozenset[str]] = {
    "all": WRITE_PRIVILEGES | READ_ONLY_PRIVILEGES,
    "write": frozenset({"write", "index", "create", "create_doc", "delete"}),
    "index": frozenset({"index", "create", "create_doc"}),
    "create": frozenset({"create", "create_doc"}),
    "manage": frozenset({"manage", "create_index", "delete_index", "view_index_metadata",
                         "monitor", "maintenance"}),
}
# Index privileges that create, delete or reshape an index (not its documents).
INDEX_ADMIN_PRIVILEGES = frozenset({"all", "manage", "create_index", "delete_index",
                                    "auto_configure", "manage_ilm", "manage_data_stream_lifecycle",
                                    "manage_follow_index", "manage_leader_index"})

Role = dict[str, Any]


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    if pattern.startswith(("/", "-")) or any(c in pattern for c in ",<>"):
        raise ValueError(f"unsupported index pattern (regex, exclusion or date math): {pattern!r}")
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def index_matches(pattern: str, index: str) -> bool:
    """Whether a role's index name pattern covers `index`: `*` is any run of characters (also
    none), `?` any one character, anything else itself; the whole name must match."""
    return _pattern(pattern).fullmatch(index) is not None


def granted(privileges: set[str]) -> set[str]:
    """The privileges `privileges` amount to, with what each includes."""
    result = set(privileges)
    for privilege in privileges:
        result |= IMPLIES.get(privilege, frozenset())
    return result


def index_privileges(role: Role, index: str) -> set[str]:
    """Every index privilege the role grants on `index`, from all its matching entries."""
    held: set[str] = set()
    for entry in role.get("indices", []):
        if any(index_matches(pattern, index) for pattern in entry["names"]):
            held |= set(entry["privileges"])
    return granted(held)




def load_roles() -> dict[str, Role]:
    data = json.loads(ROLES_FILE.read_text(encoding="utf-8"))
    return {name: role for name, role in data.items() if not name.startswith("_")}


# -- what a request needs ---------------------------------------------------------------------

Need = tuple[str, str | None]  # (privilege, index) ; index None: a cluster privilege

# Endpoints that name no index, by their first path segment: the cluster privilege they need
# (None: any authenticated user may call them, as scroll and point-in-time continuations).
_CLUSTER_ENDPOINTS = {"_cluster": "monitor", "_nodes": "monitor", "_cat": "monitor", "": "monitor",
                      "_index_template": "manage_index_templates",
                      "_security": None, "_pit": None}
# Index endpoints, by the segment after the index expression and the method: the privilege.
_INDEX_ENDPOINTS: dict[tuple[str, str], str] = {
    **{(segment, method): "read" for segment in ("_search", "_count", "_mget", "_msearch",
                                                  "_source", "_explain")
       for method in ("GET", "POST")},
    ("_doc", "GET"): "read", ("_doc", "HEAD"): "read",
    ("_doc", "PUT"): "index", ("_doc", "POST"): "index", ("_create", "PUT"): "create",
    ("_create", "POST"): "create", ("_update", "POST"): "index", ("_doc", "DELETE"): "delete",
    ("_delete_by_query", "POST"): "delete", ("_update_by_query", "POST"): "index",
    ("_mapping", "GET"): "view_index_metadata", ("_mapping", "PUT"): "manage",
    ("_mapping", "POST"): "manage", ("_settings", "GET"): "view_index_metadata",
    ("_settings", "PUT"): "manage", ("_alias", "GET"): "view_index_metadata",
    ("_aliases", "GET"): "view_index_metadata",
    ("_refresh", "POST"): "maintenance", ("_refresh", "GET"): "maintenance",
    ("_flush", "POST"): "maintenance", ("_forcemerge", "POST"): "maintenance",
    ("", "PUT"): "create_index", ("", "DELETE"): "delete_index",
    ("", "GET"): "view_index_metadata", ("", "HEAD"): "view_index_metadata",
}
_BULK_ACTIONS = {"index": "index", "create": "create", "update": "index", "delete": "delete"}


def required(method: str, path: str, body: bytes) -> list[Need]:
    """The privileges Elasticsearch checks before it serves this request (the endpoints the
    pipeline uses). Raises `KeyError` for one it does not know: a new kind of request must be
    judged before a role is said to allow it."""
    segments = path.split("?", 1)[0].strip("/").split("/")
    first = segments[0]
    if first == "_bulk" or (len(segments) > 1 and segments[1] == "_bulk"):
        default = None if first == "_bulk" else first
        needs: list[Need] = []
        for line in body.splitlines():
            action = json.loads(line) if line.strip() else {}
            for kind, meta in action.items():
                if kind in _BULK_ACTIONS and isinstance(meta, dict):
                    needs.append((_BULK_ACTIONS[kind], meta.get("_index") or default))
        return needs
    if first == "_aliases" and method == "POST":
        actions = json.loads(body or b"{}").get("actions", [])
        return [("manage", meta.get("index")) for action in actions for meta in action.values()]
    if first == "_mget":
        return [("read", doc["_index"]) for doc in json.loads(body)["docs"]]
    if first == "_msearch":
        headers = [json.loads(line) for line in body.splitlines()[::2] if line.strip()]
        return [("read", name) for header in headers
                for name in str(header["index"]).split(",")]
    if first == "_alias" and method == "GET":
        return [("view_index_metadata", name) for name in segments[1].split(",")]
    if first.startswith("_") or not first:
        if first == "_search":  # scroll continuation / clear
            return []
        privilege = _CLUSTER_ENDPOINTS[first]
        return [] if privilege is None else [(privilege, None)]
    segment = segments[1] if len(segments) > 1 else ""
    privilege = _INDEX_ENDPOINTS[(segment, method)]
    return [(privilege, index) for index in first.split(",")]


def cluster_privileges(role: Role) -> set[str]:
    held = set(role.get("cluster", []))
    if "all" in held or "manage" in held:
        held |= {"monitor", "manage_index_templates"}
    return held


def denied(role: Role, needs: list[Need], production_name: Callable[[str], str]) -> list[Need]:
    """The needs `role` does not grant; index names are judged as `production_name` maps them
    (a test's alias stands for news-articles)."""
    missing = []
    for privilege, index in needs:
        if index is None:
            if privilege not in cluster_privileges(role):
                missing.append((privilege, index))
        elif privilege not in index_privileges(role, production_name(index)):
            missing.append((privilege, index))
    return missing
