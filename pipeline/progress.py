"""progress: what a long run shows a person at a terminal — pages done, the rate and the time
left — drawn by tqdm on stderr, and nothing at all when stderr is not a terminal (a DAG task's
log, a pipe, `--json` read by a script).

The stages report through `Progress`: `listed(n)` when they learn of n more units of work (a
feed's items, a reindex's documents) and `done(n)` when n are finished; `NO_PROGRESS` ignores
both.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from tqdm import tqdm


class Progress(Protocol):
    def listed(self, count: int) -> None: ...

    def done(self, count: int = 1) -> None: ...


class _Silent:
    def listed(self, count: int) -> None:
        pass

    def done(self, count: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _Silent()


class _Bar:
    """A tqdm bar whose total grows as work is listed; safe to update from several threads."""

    def __init__(self, bar: tqdm) -> None:  # type: ignore[type-arg]
        self._bar = bar
        self._lock = threading.Lock()

    def listed(self, count: int) -> None:
        with self._lock:
            self._bar.total = (self._bar.total or 0) + count
            self._bar.refresh()

    def done(self, count: int = 1) -> None:
        with self._lock:
            self._bar.update(count)


@contextmanager
def terminal_progress(description: str, unit: str,
                      stream: TextIO | None = None) -> Iterator[Progress]:
    """A bar on `stream` (stderr) when it is a terminal, else `NO_PROGRESS`."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield NO_PROGRESS
        return
    with tqdm(total=0, desc=description, unit=unit, file=stream, dynamic_ncols=True,
              smoothing=0.1) as bar:
        yield _Bar(bar)
