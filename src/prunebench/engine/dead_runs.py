"""Runs whose process died without a word (issue 23): a native abort ("corrupted double-linked
list", a segfault), the out-of-memory killer or `kill -9` leave a run `running` and its step's
lease behind. The next invocation on the directory marks such runs failed, with the reason,
before it takes stock; runs it plans are then retried as any failed run is.

Only when no live process of this machine holds a lease: a run another live sweep is computing
stays `running`. A lease of another machine is never judged dead here (its heartbeat decides).
"""

from __future__ import annotations

from prunebench.engine.leases import owner_gone
from prunebench.store.database import Store

DIED = (
    "the process computing it ({owner}) ended without recording why: killed (out of memory?) "
    "or crashed natively (a segfault or abort inside a library); run it again, and if it dies "
    "again try train.channels_last=false, more --threads, or -x processes to contain it"
)


def mark_dead_runs(store: Store) -> list[str]:
    """Mark failed the runs left `running` by processes that died; their ids."""
    leases = store.leases()
    gone = [lease["owner"] for lease in leases if owner_gone(lease["owner"])]
    if not gone or len(gone) != len(leases):
        return []
    runs = store.frame("runs")
    if runs.empty:
        return []
    running = list(runs.loc[runs["status"] == "running", "run_id"])
    owner = gone[0].rsplit(":", 1)[0].replace(":", " pid ", 1)
    for run_id in running:
        store.finish_run(run_id, "failed", DIED.format(owner=owner))
    return running
