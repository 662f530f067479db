"""``run_audit``: one audit run, from the ledger's state to its recorded ``audited`` event."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from custody import times
from custody.audit.leftovers import leftover_findings
from custody.audit.objects import ObjectAuditor
from custody.audit.recorded import LedgerState, load_ledger_state
from custody.audit.rehash import LocalPrehash
from custody.audit.report import AuditProgress, AuditReport, AuditRequest, ProgressSink
from custody.audit.schedule import last_full_checks, next_slot
from custody.audit.unrecorded import StoreListing, list_unrecorded
from custody.errors import Finding, FindingKind
from custody.workspace import Workspace
from storage.base import LockProbe, ObjectStore
from storage.errors import StorageError

if TYPE_CHECKING:
    from custody.ledger.database import Ledger
    from custody.ledger.seal import LedgerReport


_T = TypeVar("_T")
_R = TypeVar("_R")


def _parallel(items: Iterable[_T], work: Callable[[_T], _R], workers: int) -> Iterator[_R]:
    """``work(item)`` for every item on ``workers`` threads, results as they finish; at most
    ``4 * workers`` items are in flight. The first exception cancels what has not started."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit")
    pending: set[Future[_R]] = set()
    try:
        for item in items:
            pending.add(pool.submit(work, item))
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _StoreWide:
    """The checks that are about the store and the ledger as a whole."""

    ledger: LedgerReport
    listing: StoreListing
    probes: list[LockProbe]
    leftovers: list[Finding]


def _store_wide(workspace: Workspace, state: LedgerState, request: AuditRequest) -> _StoreWide:
    import logging

    from custody.anchors.verification import verify_all

    ledger: Ledger = workspace.ledger
    store: ObjectStore = workspace.store
    report, anchors = verify_all(ledger, store, workspace.settings, workspace.verifier())
    for line in anchors.notices():
        logging.getLogger("custody.audit").warning(line)
    listing = list_unrecorded(store, state, request.shard, ledger, request.in_flight_grace)
    return _StoreWide(report, listing, store.lock_self_test(), leftover_findings(store, request.in_flight_grace))


def run_audit(
    workspace: Workspace,
    request: AuditRequest,
    progress: ProgressSink | None = None,
    prehash: LocalPrehash | None = None,
) -> AuditReport:
    """Audit the store and the ledger as ``request`` asks, append an ``audited`` event with the
    result, then sign a checkpoint (``workspace`` is a ``custody.home.Workspace``; ``prehash``,
    if given, was started on the same store for the same request).

    The store-wide checks (ledger verification, listing for unrecorded objects, canary) run on
    a thread of their own while the objects are checked. Objects an ingest is storing meanwhile
    are not findings (``custody.audit.unrecorded``). Findings are returned in the report,
    never raised. ``StorageUnavailable`` and ``LedgerUnavailable`` propagate, and then nothing
    is recorded."""
    progress = progress or AuditProgress()
    ledger: Ledger = workspace.ledger
    store: ObjectStore = workspace.store
    clock = time.monotonic()
    started = times.now()
    through_seq, _ = ledger.head()
    state = load_ledger_state(ledger, through_seq, workspace.settings.config)
    slot = next_slot(state.audits, request.shard, request.rotation) if request.rotation else None
    report = AuditReport(
        request.level, request.shard, request.rotation, slot, through_seq,
        store.describe(), store.capabilities.worm, times.format_utc(started), in_flight_grace=request.in_flight_grace,
    )
    mine = [obj for obj in state.objects.values() if request.shard.contains(obj.blake3)]
    due = [o for o in mine if not o.disposed and report.due(o.blake3)]
    progress.start(len(mine), sum(o.size for o in due))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-store") as side:
        store_wide = side.submit(_store_wide, workspace, state, request)
        auditor = ObjectAuditor(store, report, progress, prehash)
        ordered = sorted(mine, key=lambda o: -o.size)
        results = {result.blake3: result for result in _parallel(ordered, auditor, request.workers)}
        whole = store_wide.result()
    whole.listing.recheck(ledger, through_seq)
    report.ledger = whole.ledger
    report.listed = whole.listing.listed
    report.in_flight = whole.listing.in_flight
    report.probes = whole.probes
    report.objects = [results[o.blake3] for o in sorted(mine, key=lambda o: o.blake3)]
    report.attachments_checked = sum(len(o.attachments) for o in mine if not o.disposed)
    report.findings.extend(whole.ledger.findings)
    report.findings.extend(state.findings)
    for result in report.objects:
        report.findings.extend(result.findings)
    report.findings.extend(whole.listing.findings)
    report.findings.extend(whole.leftovers)
    if not report.canary_enforced:
        allowed = [p for p in report.probes if not p.refused]
        report.findings.append(Finding(
            FindingKind.STORE_NOT_ENFORCING, report.store,
            "the store let a locked canary be weakened: "
            + "; ".join(f"{p.action}: {p.detail}" for p in allowed)
            + ". Retention locks on this store cannot be relied on",
            extra={"probes": [p.action for p in allowed]}))

    previous = last_full_checks(state.audits, mine)
    report.duration = time.monotonic() - clock
    event = ledger.append(
        "audited",
        actor=workspace.settings.actor,
        role=workspace.settings.role,
        details=report.event_details(),
    )
    report.seq = event.seq
    report.finished = event.time
    this_run = {"seq": event.seq, "time": event.time, "level": request.level}
    for result in report.objects:
        if result.hashed:
            result.last_full_check = this_run
        elif result.blake3 in previous:
            record = previous[result.blake3]
            result.last_full_check = {"seq": record.seq, "time": record.time, "level": record.level}
    successes = [r.time for r in state.audits if r.shard == request.shard and r.level == request.level and r.findings == 0]
    if report.ok:
        successes.append(event.time)
    report.last_success = max(successes) if successes else None
    try:
        sealed = workspace.seal()
    except StorageError as exc:
        if report.ok:
            raise
        report.seal_error = str(exc)
    else:
        report.checkpoint = sealed.size if sealed is not None else None
    return report
