"""Leases: the work locks between processes sharing one results directory.

A process takes a lease on a step (or a dense model) before computing it, keeps it fresh with a
heartbeat thread and drops it with the result (or on close). The lease rows live in the
store's lease table (`Store.lease` / `release` / `heartbeat`); this module decides when
another process's lease may be taken over: its heartbeat is older than `stale_after` seconds,
or its owner was a process of this machine that is gone (a killed sweep run again does not
wait).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from contextlib import suppress

from prunebench.errors import PrunebenchError
from prunebench.store.database import Store

LEASE_STALE_S = 60.0  # a lease whose heartbeat is older than this is taken over


class Leases:
    """This process's leases on the steps and dense models of one results directory."""

    def __init__(self, store: Store, stale_after: float = LEASE_STALE_S) -> None:
        self.store, self.stale_after = store, stale_after
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.poll = min(0.5, stale_after / 10)  # how often a waiting process looks again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def take(self, kind: str, key: str, seen: float | None) -> str:
        """'leased' (the lease is ours), 'busy' (another process holds it) or 'stored' (its
        file was written since `seen`; see `Store.lease`)."""
        state = self.store.lease(kind, key, self.owner, seen, self._may_take)
        if state == "leased" and self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="leases", daemon=True)
            self._thread.start()
        return state

    def release(self, kind: str, key: str) -> None:
        with suppress(PrunebenchError):
            self.store.release(self.owner, kind, key)

    def _may_take(self, owner: str, heartbeat: float) -> bool:
        return time.time() - heartbeat > self.stale_after or owner_gone(owner)

    def _beat(self) -> None:
        while not self._stop.wait(self.stale_after / 4):
            with suppress(Exception):  # a busy or full disk: the lease may go stale, no more
                self.store.heartbeat(self.owner)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with suppress(PrunebenchError):
            self.store.release(self.owner)


def owner_gone(owner: str) -> bool:
    """Whether a lease's owner was a process of this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():  # an earlier driver of this process, closed without releasing
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process)
        return False
    return False
