"""The audit's result as Prometheus metrics, for a node exporter's textfile collector."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from custody.audit.recorded import parse_time
from custody.audit.report import AuditReport
from custody.audit.shards import Shard
from custody.errors import ConfigError


_METRICS = (
    ("custody_audit_success", "1 if the last audit found nothing, else 0."),
    ("custody_audit_objects_checked", "Objects whose presence, metadata and locks the last audit checked."),
    ("custody_audit_objects_rehashed", "Objects whose bytes the last audit re-read and hashed."),
    ("custody_audit_bytes_hashed", "Bytes the last audit re-read and hashed."),
    ("custody_audit_findings", "Findings of the last audit, by kind."),
    ("custody_audit_objects_in_flight", "Unrecorded objects the last audit took to be in the middle of an ingest."),
    ("custody_audit_objects_never_fully_checked", "Objects never re-hashed by any recorded audit of this shard."),
    ("custody_audit_duration_seconds", "Wall time of the last audit."),
    ("custody_audit_last_run_timestamp_seconds", "When the last audit finished (Unix time)."),
    ("custody_audit_last_success_timestamp_seconds",
     "When the latest audit of this shard and level without findings finished (Unix time; 0: never)."),
)


def _labels(shard: str, level: str, **more: str) -> str:
    pairs = {"shard": shard, "level": level, **more}
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unix(stamp: str | None) -> float:
    moment = parse_time(stamp) if stamp else None
    return moment.timestamp() if moment else 0.0


def _render(values: Mapping[str, list[tuple[str, float]]]) -> str:
    lines: list[str] = []
    for name, help_text in _METRICS:
        samples = values.get(name)
        if not samples:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:.17g}")
    return "\n".join(lines) + "\n"


def prometheus_metrics(report: AuditReport) -> str:
    """The report in the Prometheus text exposition format (for a node exporter's textfile
    collector), labelled with the shard and the level."""
    shard, level = report.shard.label, report.level
    plain = _labels(shard, level)
    values: dict[str, list[tuple[str, float]]] = {
        "custody_audit_success": [(plain, 1.0 if report.ok else 0.0)],
        "custody_audit_objects_checked": [(plain, float(len(report.checked)))],
        "custody_audit_objects_rehashed": [(plain, float(len(report.rehashed)))],
        "custody_audit_bytes_hashed": [(plain, float(report.bytes_hashed))],
        "custody_audit_findings": [(_labels(shard, level, kind=k), float(n)) for k, n in report.by_kind().items()],
        "custody_audit_objects_in_flight": [(plain, float(len(report.in_flight)))],
        "custody_audit_objects_never_fully_checked": [
            (plain, float(sum(1 for o in report.checked if o.last_full_check is None)))
        ],
        "custody_audit_duration_seconds": [(plain, report.duration)],
        "custody_audit_last_run_timestamp_seconds": [(plain, _unix(report.finished))],
        "custody_audit_last_success_timestamp_seconds": [(plain, _unix(report.last_success))],
    }
    return _render(values)


def failure_metrics(previous: str | None, shard: Shard, level: str, now: datetime) -> str:
    """Metrics for an audit that could not run (store or database unreachable): success 0,
    the time of the attempt, and the last success time carried over from ``previous`` (the
    file's earlier contents), so that an alert on its age keeps firing."""
    plain = _labels(shard.label, level)
    last_success = 0.0
    prefix = "custody_audit_last_success_timestamp_seconds" + plain + " "
    for line in (previous or "").splitlines():
        if line.startswith(prefix):
            try:
                last_success = float(line[len(prefix):])
            except ValueError:
                pass
    return _render({
        "custody_audit_success": [(plain, 0.0)],
        "custody_audit_last_run_timestamp_seconds": [(plain, now.timestamp())],
        "custody_audit_last_success_timestamp_seconds": [(plain, last_success)],
    })


def write_metrics(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temporary file in the same directory, then rename), as the
    textfile collector requires. ``ConfigError`` when it cannot be written."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the metrics file {path}: {exc.strerror or exc}") from exc
