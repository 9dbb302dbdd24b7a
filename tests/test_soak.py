"""The soak at its small budget (tests/chaos/soak.py): four concurrent `newsroom ingest`
workers over overlapping feeds, one killed with SIGKILL and restarted, and a reindex to a raised
mapping version in the middle, leave what a serial run over the same feeds leaves: the same
documents, one ledger record per item URL with the same outcome, nothing dangling, nothing
quarantined. Every row of the soak's table is asserted; the table and the seed to repeat the
draws are in the failure message."""

from __future__ import annotations

import io

from pipeline.settings import Settings
from tests.chaos.soak import run_soak


def test_concurrent_workers_a_kill_and_a_reindex_leave_what_a_serial_run_leaves(
        fresh_settings: Settings) -> None:
    out = io.StringIO()
    result = run_soak("small", prefix=fresh_settings.index_alias, settings=fresh_settings,
                      out=out)
    print(out.getvalue())
    assert [check.name for check in result.checks if not check.ok] == [], out.getvalue()
