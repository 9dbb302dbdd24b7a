"""The Kibana saved objects only use fields the index mappings have, with types that fit the use.

Everything here reads files: no Elasticsearch, no Kibana. The checker walks the saved objects
(JSON strings such as `panelsJSON` and `searchSourceJSON` included) instead of listing fields by
hand, so a new panel is checked as soon as it is in `config/kibana/saved_objects.ndjson`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SAVED_OBJECTS = ROOT / "config" / "kibana" / "saved_objects.ndjson"
MAPPING_FILES = {
    "news-articles": ROOT / "config" / "mappings" / "articles.json",
    "news-articles-feed-health": ROOT / "config" / "mappings" / "feed_health.json",
}

LAYER_REFERENCE = "indexpattern-datasource-layer-"
RECORDS = "___records___"  # Lens's pseudo-field for count()

NUMERIC = frozenset({"byte", "short", "integer", "long", "unsigned_long", "half_float", "float",
                     "double", "scaled_float"})
DATES = frozenset({"date", "date_nanos"})
KEYWORDS = frozenset({"keyword", "constant_keyword"})
AGGREGATABLE = NUMERIC | DATES | KEYWORDS | {"boolean", "ip"}
TEXT = frozenset({"text", "match_only_text"})
# What a field's mapping type must be for each use; a use not listed here is reported.
ALLOWED: dict[str, frozenset[str]] = {
    "time_field": DATES,
    "date_histogram": DATES,
    "sort_field": DATES,  # the date a last_value column sorts by
    "terms": KEYWORDS,
    "last_value": AGGREGATABLE,
    "count": AGGREGATABLE,
    "unique_count": AGGREGATABLE,
    **{op: NUMERIC for op in ("sum", "average", "median", "min", "max", "percentile",
                              "percentile_rank", "standard_deviation", "moving_average")},
    "sort": AGGREGATABLE,
    "column": AGGREGATABLE | TEXT,
    "filter": AGGREGATABLE | TEXT,
    "label": AGGREGATABLE | TEXT,  # a data view's custom label for a field
    "default_field": KEYWORDS | TEXT,  # the search bar's fields (index.query.default_field)
}

FIELD_CALL = re.compile(r"\b([a-z_]+)\(\s*([A-Za-z_@][\w.@-]*)\s*[,)]")  # sum(duplicate_count)
QUERY_IN_FORMULA = re.compile(r"\b(?:kql|lucene)='((?:[^'\\]|\\.)*)'")
QUERY_FIELD = re.compile(r"(?<![\w.@])([A-Za-z_@][\w.@]*)\s*(?::|<=|>=|<|>)")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


class Ref(NamedTuple):
    """One use of a field by a saved object: which data view (by title), which field, how."""

    data_view: str
    field: str
    use: str


class Problem(NamedTuple):
    data_view: str
    field: str
    use: str
    reason: str


def load_objects(path: Path = SAVED_OBJECTS) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def load_mappings() -> dict[str, dict[str, str]]:
    return {title: mapping_fields(json.loads(path.read_text(encoding="utf-8")))
            for title, path in MAPPING_FILES.items()}


def mapping_fields(mapping: Mapping[str, Any]) -> dict[str, str]:
    """`{path: type}` for every field of an index template body (or a bare `mappings` body),
    objects and nested parents included, multi-fields as `parent.sub`."""
    fields: dict[str, str] = {}

    def visit(properties: Mapping[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            fields[path] = spec.get("type", "object")
            visit(spec.get("properties", {}), path + ".")
            for sub, sub_spec in spec.get("fields", {}).items():
                fields[f"{path}.{sub}"] = sub_spec.get("type", "object")

    visit(mapping.get("mappings", mapping).get("properties", {}), "")
    return fields


def referenced_fields(objects: list[dict[str, Any]]) -> list[Ref]:
    """Every field the saved objects use, with the data view title it is looked up in."""
    titles = {obj["id"]: obj["attributes"]["title"]
              for obj in objects if obj["type"] == "index-pattern"}
    found: set[Ref] = set()
    for obj in objects:
        if obj["type"] == "index-pattern" and obj["attributes"].get("timeFieldName"):
            found.add(Ref(obj["attributes"]["title"], obj["attributes"]["timeFieldName"],
                          "time_field"))
        if obj["type"] == "index-pattern":
            labelled = json.loads(obj["attributes"].get("fieldAttrs") or "{}")
            found.update(Ref(obj["attributes"]["title"], name, "label") for name in labelled)
        for view_id, field, use in _walk(obj, {}, None):
            view = titles.get(view_id, view_id) if view_id else "<no data view>"
            found.add(Ref(view, field, use))
    return sorted(found)


def problems(refs: list[Ref], mappings: Mapping[str, Mapping[str, str]]) -> list[Problem]:
    """Uses that the mapping of their data view does not support, one per use."""
    found = []
    for ref in refs:
        fields = mappings.get(ref.data_view)
        field_type = fields.get(ref.field) if fields is not None else None
        parents = [".".join(ref.field.split(".")[:i]) for i in range(1, ref.field.count(".") + 1)]
        nested = [p for p in parents if fields is not None and fields.get(p) == "nested"]
        if fields is None:
            reason = "no mapping for this data view"
        elif field_type is None:
            reason = "not in the mapping"
        elif nested:
            reason = f"under nested field {nested[0]}, which Lens and Discover cannot aggregate"
        elif ref.use not in ALLOWED:
            reason = "unknown use"
        elif field_type not in ALLOWED[ref.use]:
            reason = f"a {field_type} field cannot serve as {ref.use}"
        else:
            continue
        found.append(Problem(*ref, reason))
    return found


def _walk(node: Any, refs: Mapping[str, str], layer: str | None
          ) -> Iterator[tuple[str | None, str, str]]:
    """Yield `(data view id, field, use)` from any saved-object structure.

    `refs` maps reference names to ids, the innermost `references` list winning (a by-value
    Lens panel carries its own); `layer` is the Lens layer being walked, if any."""
    if isinstance(node, str):
        decoded = _decode(node)
        if decoded is not None:
            yield from _walk(decoded, refs, layer)
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, refs, layer)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("references"), list):
        refs = {**refs, **{r["name"]: r["id"] for r in node["references"] if "name" in r}}
    if "operationType" in node:  # a Lens column
        view = refs.get(LAYER_REFERENCE + layer) if layer else None
        yield from ((view, field, use) for field, use in _lens_column(node))
    if "indexRefName" in node:  # a search source (saved search, legacy visualization)
        yield from _search_source(node, refs)
    if isinstance(node.get("columns"), list) and "kibanaSavedObjectMeta" in node:  # saved search
        source = _decode(node["kibanaSavedObjectMeta"].get("searchSourceJSON", "")) or {}
        view = refs.get(source.get("indexRefName", ""))
        yield from ((view, c, "column") for c in node["columns"] if not c.startswith("_"))
        sort = node.get("sort") or []
        pairs = [sort] if sort and isinstance(sort[0], str) else sort
        yield from ((view, pair[0], "sort") for pair in pairs if not pair[0].startswith("_"))
    for key, value in node.items():
        if key == "layers" and isinstance(value, dict):  # Lens datasource layers by id
            for layer_id, layer_state in value.items():
                yield from _walk(layer_state, refs, layer_id)
        elif key != "references":
            yield from _walk(value, refs, layer)


def _lens_column(column: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    operation = column["operationType"]
    params = column.get("params") or {}
    if column.get("sourceField") and column["sourceField"] != RECORDS:
        yield column["sourceField"], operation
    for field in params.get("secondaryFields") or []:  # multi-field top values
        yield field, operation
    if params.get("sortField"):
        yield params["sortField"], "sort_field"
    if operation == "formula":
        yield from _formula_fields(params.get("formula", ""))
    if isinstance(column.get("filter"), dict):
        yield from ((f, "filter") for f in _query_fields(column["filter"].get("query", "")))


def _formula_fields(formula: str) -> Iterator[tuple[str, str]]:
    """`sum(duplicate_count) / count()` uses duplicate_count as a sum."""
    for function, field in FIELD_CALL.findall(formula):
        yield field, function
    for query in QUERY_IN_FORMULA.findall(formula):
        yield from ((f, "filter") for f in _query_fields(query))


def _search_source(source: Mapping[str, Any], refs: Mapping[str, str]
                   ) -> Iterator[tuple[str | None, str, str]]:
    view = refs.get(source["indexRefName"])
    query = source.get("query") or {}
    if isinstance(query.get("query"), str):
        yield from ((view, f, "filter") for f in _query_fields(query["query"]))
    for item in source.get("filter") or []:
        meta = item.get("meta") or {}
        if meta.get("key"):
            yield refs.get(meta.get("indexRefName", ""), view), meta["key"], "filter"


def _query_fields(query: str) -> list[str]:
    """Field names of `field: value` / `field >= value` clauses in KQL or Lucene."""
    return QUERY_FIELD.findall(QUOTED.sub('""', query))


def _decode(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _references(node: Any) -> Iterator[dict[str, Any]]:
    """Every reference, however deep (by-value Lens panels inside `panelsJSON` included)."""
    if isinstance(node, str):
        yield from _references(_decode(node))
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        if isinstance(node.get("references"), list):
            yield from (r for r in node["references"] if isinstance(r, dict))
        for key, value in node.items():
            if key != "references":
                yield from _references(value)


def _articles_template() -> dict[str, Any]:
    """A fresh copy of the articles index template, free to break."""
    return json.loads(MAPPING_FILES["news-articles"].read_text(encoding="utf-8"))


def _keys(found: list[Problem]) -> set[tuple[str, str, str]]:
    return {(p.data_view, p.field, p.use) for p in found}


def test_saved_objects_fit_the_mappings() -> None:
    assert problems(referenced_fields(load_objects()), load_mappings()) == []


def test_every_line_is_a_saved_object_with_a_unique_stable_id() -> None:
    objects = load_objects()
    assert len(objects) == len(SAVED_OBJECTS.read_text(encoding="utf-8").splitlines())
    assert all({"type", "id", "attributes", "references"} <= obj.keys() for obj in objects)
    ids = [obj["id"] for obj in objects]
    assert len(ids) == len(set(ids)) and all(i.startswith("newsroom-") for i in ids)


def test_references_point_to_data_views_in_the_file() -> None:
    objects = load_objects()
    data_views = {obj["id"] for obj in objects if obj["type"] == "index-pattern"}
    references = [r for obj in objects for r in _references(obj)]
    assert references
    assert {(r["type"], r["id"]) for r in references} <= {("index-pattern", v) for v in data_views}


def test_each_data_view_has_a_mapping_file() -> None:
    titles = {o["attributes"]["title"] for o in load_objects() if o["type"] == "index-pattern"}
    assert titles == MAPPING_FILES.keys()


def test_lens_panels_are_linked_to_their_data_view_as_kibana_stores_them() -> None:
    for dashboard in (o for o in load_objects() if o["type"] == "dashboard"):
        outer = {(r["name"], r["id"]) for r in dashboard["references"]}
        for panel in json.loads(dashboard["attributes"]["panelsJSON"]):
            lens = panel["embeddableConfig"]["attributes"]
            inner = {(r["name"], r["id"]) for r in lens["references"]}
            layers = lens["state"]["datasourceStates"]["formBased"]["layers"]
            assert {name for name, _ in inner} == {LAYER_REFERENCE + lid for lid in layers}
            # Kibana takes the ids from the dashboard's references, named `<panelIndex>:<name>`.
            assert {(f"{panel['panelIndex']}:{name}", i) for name, i in inner} <= outer


def test_checker_sees_every_kind_of_use() -> None:
    refs = referenced_fields(load_objects())
    assert {ref.use for ref in refs} >= {"time_field", "column", "sort", "date_histogram",
                                         "terms", "last_value", "sort_field", "sum", "average",
                                         "median"}
    assert Ref("news-articles-feed-health", "median_fetch_ms", "median") in refs


def test_the_search_bar_and_the_data_view_use_the_language_fields() -> None:
    """Kibana's search bar (the index's `query.default_field`) searches every language's
    sub-fields, each of them a field of the mapping, and the data view labels them."""
    template = _articles_template()
    fields = mapping_fields(template)
    default = template["settings"]["query"]["default_field"]
    languages = {f"{parent}.{lang}" for parent in ("title", "text") for lang in ("en", "ru", "zh")}
    assert languages <= set(default)
    assert problems([Ref("news-articles", name, "default_field") for name in default],
                    {"news-articles": fields}) == []
    labels = {ref.field for ref in referenced_fields(load_objects()) if ref.use == "label"}
    assert labels == languages


def test_checker_reports_a_label_for_a_missing_field() -> None:
    broken = _articles_template()
    del broken["mappings"]["properties"]["text"]["fields"]["ru"]
    mappings = {**load_mappings(), "news-articles": mapping_fields(broken)}
    assert _keys(problems(referenced_fields(load_objects()), mappings)) == {
        ("news-articles", "text.ru", "label")}


def test_formula_fields_are_checked() -> None:
    formula = {"operationType": "formula", "params": {"formula": "sum(duplicate_count) / count()"}}
    lens = {"type": "lens", "id": "x", "attributes": {"state": {"datasourceStates": {"formBased": {
        "layers": {"l1": {"columns": {"c1": formula}}}}}}},
        "references": [{"type": "index-pattern", "id": "newsroom-articles",
                        "name": LAYER_REFERENCE + "l1"}]}
    views = [o for o in load_objects() if o["type"] == "index-pattern"]
    assert Ref("news-articles", "duplicate_count", "sum") in referenced_fields([*views, lens])


def test_checker_reports_a_missing_field() -> None:
    broken = _articles_template()
    del broken["mappings"]["properties"]["duplicate_count"]
    mappings = {**load_mappings(), "news-articles": mapping_fields(broken)}
    assert _keys(problems(referenced_fields(load_objects()), mappings)) == {
        ("news-articles", "duplicate_count", "sum"),
        ("news-articles", "duplicate_count", "column"),
    }


def test_checker_reports_a_time_field_that_is_not_a_date() -> None:
    broken = _articles_template()
    broken["mappings"]["properties"]["published_at"]["type"] = "keyword"
    mappings = {**load_mappings(), "news-articles": mapping_fields(broken)}
    assert _keys(problems(referenced_fields(load_objects()), mappings)) == {
        ("news-articles", "published_at", "time_field"),
        ("news-articles", "published_at", "date_histogram"),
        ("news-articles", "published_at", "sort_field"),
    }


def test_checker_rejects_nested_fields() -> None:
    refs = [Ref("news-articles", "entities.name", "terms")]
    assert [p.reason for p in problems(refs, load_mappings())] == [
        "under nested field entities, which Lens and Discover cannot aggregate"]
