#!/usr/bin/env bash
# `make demo`: serve the sample corpus on 127.0.0.1:8765, run the news_ingest DAG over it
# through Airflow (`airflow dags test`), then print the run's outcomes and the top hits.
set -euo pipefail
cd "$(dirname "$0")/.."

export NEWSROOM_FEEDS="$PWD/tests/sample_site/feeds.yaml"
export NEWSROOM_ALLOW_NETS="127.0.0.0/8"   # the sample sites live on loopback
export NEWSROOM_HOST_DELAY="0.05"          # and are ours: a short delay between requests

python tests/sample_site/server.py --port 8765 &
site=$!
trap 'kill $site 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  python -c "import socket; socket.create_connection(('127.0.0.1', 8765), 0.2)" 2>/dev/null && break
  sleep 0.2
done
if ! kill -0 "$site" 2>/dev/null; then
  echo "could not serve the sample corpus on 127.0.0.1:8765 (port in use?)" >&2
  exit 1
fi

log="$AIRFLOW_HOME/demo-dag-test.log"
echo "Running the news_ingest DAG over the sample corpus (log: $log)..."
if ! airflow dags test news_ingest > "$log" 2>&1; then
  tail -40 "$log"
  echo "news_ingest failed; see $log" >&2
  exit 1
fi
run_id=$(grep -o 'DagRun Finished: .*run_id=[^,]*' "$log" | sed 's/.*run_id=//' | tail -1)
echo
echo "The DAG run's report:"
grep -o 'news_ingest \(feed\|totals\) [^[]*' "$log" | sed 's/^news_ingest /  /'
echo
echo "Outcomes of run $run_id (from the ledger; a rerun over unchanged feeds has none):"
newsroom ledger --run "$run_id"
echo
echo 'Top hits for "Putin Xi", and for "Путина" (any case form of the name):'
newsroom search "Putin Xi" --limit 3
newsroom search "Путина" --limit 2
echo
echo "Backfill from the outlets' archive listings, 2026-09-21 to 2026-11-25 (what the feeds no longer list):"
newsroom backfill --from 2026-09-21 --to 2026-11-25
echo
echo "Feed health after the DAG run (newsroom feeds):"
newsroom feeds
