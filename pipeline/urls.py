"""URL normalisation and the stable ids derived from URLs."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tld import get_fld

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "piwik_", "hsa_", "_hs")
_TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "_ga", "_gl",
    "ocid", "cmpid", "ncid", "spm", "share", "ref_src", "smid",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The longest URL we take (what browsers and CDNs serve, and well under the 32,766 bytes
# Elasticsearch indexes as one keyword): a longer one is no article's address.
MAX_URL_CHARS = 8192
_AMP_PARAMS = {"amp", "outputtype", "amp_js_v", "usqp"}
_AMP_SUFFIX = re.compile(r"^(.+?)\.amp(\.html?)?$", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """The form of `url` used for identity: lower-case scheme and host, no default port, no
    fragment, no tracking or AMP parameters, no AMP path segment, no trailing slash (an empty
    path is '/')."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    host = host.removeprefix("amp.")
    port = parts.port
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = urlencode([
        (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(key) and key.lower() not in _AMP_PARAMS
    ])
    return urlunsplit((scheme, netloc, _normalize_path(parts.path), query, ""))


def _normalize_path(path: str) -> str:
    segments = [s for s in path.split("/") if s]
    segments = [s for s in segments if s.lower() != "amp"]
    if segments:
        segments[-1] = _AMP_SUFFIX.sub(r"\1\2", segments[-1])
    return "/" + "/".join(segments)


def url_id(url: str) -> str:
    """A stable document id for a URL (hash of its normalised form)."""
    return hashlib.sha256(normalize_url(url).encode("utf-8")).hexdigest()[:40]


def same_site(url: str, other: str) -> bool:
    """Whether two URLs belong to one site: the same registrable domain under the Public
    Suffix List (`amp.example.co.uk` and `www.example.co.uk`; not `a.github.io` and
    `b.github.io`), or, for hosts it does not cover (addresses, `localhost`), the same host and
    port."""
    first, second = (get_fld(u, fail_silently=True) for u in (url, other))
    if first and second:
        return bool(first == second)
    return urlsplit(url).netloc.lower() == urlsplit(other).netloc.lower()


def indexer_rank(url: str, doc_id: str) -> tuple[bool, bool, str]:
    """Of the URLs of one document (an article and its AMP or tracking variants), the order in
    which one is its indexer, the page whose text it holds: its own URL, then a URL already in
    normal form, then the rest, alphabetically."""
    return url_id(url) != doc_id, normalize_url(url) != url, url


def is_variant(url: str, doc_id: str) -> bool:
    """Whether `url` is one of the document's variant URLs (AMP, tracking parameters), not its
    own URL in normal form."""
    return indexer_rank(url, doc_id)[:2] != (False, False)


def site_of(url: str) -> str:
    """The site `url` belongs to, as `same_site` tells sites apart: its registrable domain, or
    its host and port where the Public Suffix List does not apply."""
    domain: str | None = get_fld(url, fail_silently=True)
    return domain or urlsplit(url).netloc.lower()


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)
