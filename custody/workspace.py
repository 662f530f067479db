"""The workspace as the wings see it, and opening the ledger.

``Workspace`` is the protocol every operation of a wing takes: the settings, the ledger, the
store, the ledger's keys and sealing. The class that implements it is ``custody.home.Workspace``,
which sits above every wing (it opens stores, makes keys and calls the anchors); the wings name
this protocol instead, so that no import runs back up (see the import-linter contracts in
``pyproject.toml``).

``LedgerOpening`` opens the ledger on a background thread (``custody.evidence.ingest`` starts
hashing meanwhile).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from custody.settings import Settings
from storage.base import ObjectStore

if TYPE_CHECKING:
    from custody.ledger.checkpoint import NoteSigner, Verifier
    from custody.ledger.database import Ledger
    from custody.ledger.seal import SignedCheckpoint


class Workspace(Protocol):
    """What a command works with: the settings, the ledger and the store (``custody.home``)."""

    settings: Settings
    store: ObjectStore

    @property
    def ledger(self) -> Ledger: ...

    def ledger_or_opening(self) -> Ledger | LedgerOpening:
        """The ledger, or, while it is still being opened, the ``LedgerOpening``."""
        ...

    def signer(self) -> NoteSigner:
        """The ledger's signing key (a file or an HSM key); ``ConfigError`` when missing."""
        ...

    def verifier(self) -> Verifier:
        """The ledger's verifier key."""
        ...

    def seal(self, *, force: bool = False) -> SignedCheckpoint | None:
        """Sign a checkpoint of every event so far and put it in WORM storage; None when there
        was nothing new to sign (and not ``force``)."""
        ...


LedgerHook = Callable[["Ledger"], None]
"""Called with the ledger once it is open (e.g. ``custody.actors.identity.unsigned_station``
installs an append policy)."""


class LedgerOpening:
    """The ledger, being opened on a background thread: importing SQLAlchemy and checking the
    schema take a few tenths of a second that a command can spend reading files meanwhile.
    ``get()`` waits for it, and re-raises whatever opening it raised."""

    def __init__(self, settings: Settings, hooks: Sequence[LedgerHook] = ()) -> None:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="open-ledger")
        self._future = pool.submit(_open_ledger_in_background, settings, hooks)
        pool.shutdown(wait=False)

    def ready(self) -> bool:
        return self._future.done()

    def get(self) -> Ledger:
        return self._future.result()


def _open_ledger_in_background(settings: Settings, hooks: Sequence[LedgerHook]) -> Ledger:
    background_priority()
    return open_ledger(settings, hooks)


def background_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: nice is per thread; processes it
    starts inherit it), so that work meant to fill idle time, such as opening the ledger while
    files are hashed, does not slow down the hashing. Best effort."""
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def open_ledger(settings: Settings, hooks: Sequence[LedgerHook] = ()) -> Ledger:
    """The ledger of ``settings``, its schema checked, then each of ``hooks`` called with it."""
    from custody.ledger.database import Ledger

    ledger = Ledger(settings.db_url, settings.db_timeout)
    ledger.check_ready()
    for hook in hooks:
        hook(ledger)
    return ledger
