"""Store faults seen by the command line: a server that stops answering ends `custody ingest`
and `custody audit --level full` with exit 5 naming the endpoint, within a bound; an upload
interrupted by a fault leaves no open multipart upload behind.

The servers are real: a loopback TCP server that accepts and never answers, and the radosgw of
a private Ceph cluster stopped with SIGSTOP in the middle of a multipart upload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Custody
from tests.integration.conftest import REPO, admin_client
from tests.unit.test_s3_deadlines import silent_server

pytestmark = pytest.mark.integration

MiB = 1 << 20
CephRgw = Any
FAST = "&read_timeout_s=2&connect_timeout_s=2&max_attempts=2"
"""Two attempts of at most 2 s per socket wait: one call gives up after about 5 s."""


def _custody(home: Path, *args: str, store: str | None = None, timeout: float = 180) -> tuple[int, str, str, float]:
    env = {**os.environ, "CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "tech-0412", "PYTHONPATH": str(REPO),
           "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "AKIDDEADLINE"),
           "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "deadline-secret")}
    env.pop("CUSTODY_DB", None)
    env.pop("CUSTODY_STORE", None)
    if store is not None:
        env["CUSTODY_STORE"] = store
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr, time.monotonic() - began


def test_ingest_and_full_audit_against_a_server_that_never_answers_exit_5_within_the_deadline(
    custody: Custody, clips: list[Path]
) -> None:
    init = custody("init")
    assert init.exit_code == 0, init.output
    assert custody("ingest", str(clips[0])).exit_code == 0
    with silent_server() as endpoint:
        silent = f"s3://evidence?endpoint_url={endpoint}&region=us-east-1{FAST}"
        for args in (("ingest", str(clips[1])), ("audit", "--level", "full")):
            code, out, err, elapsed = _custody(custody.home, *args, store=silent)
            assert code == 5, (args, out, err)
            assert err.startswith("custody: error: "), err
            assert f"the S3 endpoint {endpoint} (bucket evidence) did not answer while " in err, err
            assert "attempt(s) of up to 2 s each" in err and "Traceback" not in err
            assert elapsed < 30, (args, elapsed)  # one call's deadline (~5 s) plus start-up
    log = custody("log", "--json")
    assert [event["action"] for event in __import__("json").loads(log.stdout)].count("ingested") == 1


def _uploads(admin: Any, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    return list(admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []) or [])


def test_a_gateway_that_stops_answering_mid_upload_ends_ingest_with_exit_5_and_leaves_no_upload(
    custody: Custody, private_rgw: CephRgw, tmp_path: Path
) -> None:
    endpoint = private_rgw.endpoint
    admin = admin_client(private_rgw)
    bucket = f"custody-stall-{uuid.uuid4().hex[:8]}"
    url = f"s3://{bucket}?endpoint_url={endpoint}&region=us-east-1&multipart_threshold_mib=8&part_size_mib=5{FAST}"
    assert custody("init", "--store", url, "--create-bucket").exit_code == 0
    footage = tmp_path / "BWC-stall.mp4"
    footage.write_bytes(os.urandom(120 * MiB))
    env = {**os.environ, "CUSTODY_HOME": str(custody.home), "CUSTODY_ACTOR": "tech-0412", "PYTHONPATH": str(REPO)}
    env.pop("CUSTODY_DB", None)
    env.pop("CUSTODY_STORE", None)
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "ingest", str(footage)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _uploads(admin, bucket, "evidence/"):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no multipart upload appeared within 60 s"
        time.sleep(0.01)
    gateway = private_rgw._gateway_pid()
    assert Path(f"/proc/{gateway}/comm").read_text().strip() == "radosgw"
    os.kill(gateway, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        out, err = process.communicate(timeout=120)
        elapsed = time.monotonic() - stopped
    finally:
        os.kill(gateway, signal.SIGCONT)
    assert process.returncode == 5, (out, err)
    assert f"the S3 endpoint {endpoint} (bucket {bucket}) did not answer while " in err, err
    assert "evidence/" in err and "Traceback" not in err
    # the parts in flight and the abort each wait at most one call's deadline (~5 s)
    assert elapsed < 45, elapsed
    assert custody("log", "--json").stdout.strip() == "[]"
    # the abort could not reach the stopped gateway; the next put of the same key aborts it
    rerun = subprocess.run([sys.executable, "-m", "cli.main", "ingest", str(footage)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith("recorded")
    assert _uploads(admin, bucket) == []
