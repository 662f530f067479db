"""A server that accepts connections and never answers: every S3 call ends in
``StorageUnavailable`` naming the endpoint, within the deadline its settings give."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from storage.base import Retention
from storage.errors import StorageUnavailable
from storage.s3 import S3Store


@contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection, reads what it is sent and never
    writes a byte; yields its ``http://127.0.0.1:PORT`` endpoint."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def drain(connection: socket.socket) -> None:
        connection.settimeout(0.2)
        while not stop.is_set():
            try:
                if not connection.recv(1 << 16):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)
            threading.Thread(target=drain, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


@pytest.fixture
def silent_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Store, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDDEADLINE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "deadline-secret")
    with silent_server() as endpoint:
        url = f"s3://evidence/cams?endpoint_url={endpoint}&region=us-east-1&read_timeout_s=1&connect_timeout_s=1&max_attempts=2"
        yield S3Store.from_url(url), endpoint


@pytest.mark.parametrize("call", ["now", "stat", "put", "list", "ensure_bucket"])
def test_every_call_to_a_server_that_never_answers_fails_within_its_deadline(
    silent_store: tuple[S3Store, str], call: str
) -> None:
    store, endpoint = silent_store
    data = b"evidence"
    actions = {
        "now": store.now,
        "stat": lambda: store.stat("evidence/x"),
        "put": lambda: store.put("evidence/x", io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(),
                                 retention=Retention("COMPLIANCE", datetime.now(timezone.utc) + timedelta(days=1))),
        "list": lambda: list(store.list("evidence/")),
        "ensure_bucket": store.ensure_bucket,
    }
    began = time.monotonic()
    with pytest.raises(StorageUnavailable) as failed:
        actions[call]()
    elapsed = time.monotonic() - began
    message = str(failed.value)
    assert f"the S3 endpoint {endpoint} (bucket evidence) did not answer while " in message
    assert "ReadTimeoutError, 2 attempt(s) of up to 1 s each" in message
    assert "check it, then run the command again" in message
    # two attempts of one second each, botocore's backoff between them, thread start-up; far
    # below the minutes an unbounded call waits (the 1.5 s floor: both attempts waited)
    assert 1.5 < elapsed < 20, elapsed


def test_the_default_deadline_is_bounded() -> None:
    store = S3Store("evidence", endpoint_url="http://127.0.0.1:9")
    assert (store.max_attempts, store.read_timeout) == (3, 30.0)
    url = S3Store.from_url("s3://evidence?endpoint_url=http://127.0.0.1:9&read_timeout_s=7&max_attempts=4")
    assert (url.max_attempts, url.read_timeout) == (4, 7)
