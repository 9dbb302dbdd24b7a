#!/usr/bin/env bash
# Validate docker-compose files without a Docker engine, with the Compose Specification's
# reference loader (compose-go, the library behind `docker compose config`): schema, variable
# interpolation, normalisation and consistency (for example, depends_on naming a missing service).
#
#   scripts/compose-check.sh [-env-file FILE]... COMPOSE_FILE...   prints the normalised project
#   scripts/compose-check.sh                                       only builds the checker
#
# The checker (tests/compose_check, a small Go program) is built into .local/bin/compose-check on
# first use, or again when its sources change; the first build fetches its modules from the Go
# module proxy (pinned by tests/compose_check/go.sum) and takes roughly half a minute.
# Variables come from the environment and the -env-file files only: a `.env` is never read
# implicitly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/compose_check"
bin="$root/.local/bin/compose-check"

if ! command -v go > /dev/null; then
    echo "compose-check: the Go toolchain (go) is needed to build the checker" >&2
    exit 127
fi

stale=0
if [[ ! -x "$bin" ]]; then
    stale=1
else
    for f in "$src"/*.go "$src"/go.mod "$src"/go.sum; do
        [[ "$f" -nt "$bin" ]] && stale=1
    done
fi
if (( stale )); then
    mkdir -p "$(dirname "$bin")"
    # GOTOOLCHAIN=local: build with the installed Go, never fetch another toolchain;
    # -mod=readonly: modules exactly as go.sum pins them.
    (cd "$src" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -o "$bin.tmp" .)
    mv "$bin.tmp" "$bin"
fi

if (( $# > 0 )); then
    exec "$bin" "$@"
fi
