#!/usr/bin/env python3
"""tsa-server.py DIR [HOST:]PORT

A real RFC 3161 time-stamping authority for development and tests: OpenSSL's 'openssl ts
-reply' behind a small HTTP server (RFC 3161 section 3.4: POST application/timestamp-query,
answer application/timestamp-reply). DIR is made by infra/dev/tsa-ca.sh (run here if needed).
One request at a time (openssl keeps the serial number in DIR/serial). Stops on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_QUERY = 1 << 14
HERE = Path(__file__).resolve().parent


class Handler(BaseHTTPRequestHandler):
    directory: Path
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/timestamp-query" or not 0 < length <= MAX_QUERY:
            self.send_error(400, "expected an application/timestamp-query body")
            return
        query = self.rfile.read(length)
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "q.tsq").write_bytes(query)
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.directory / "tsa.cnf"),
                 "-queryfile", str(Path(tmp) / "q.tsq"), "-out", str(Path(tmp) / "r.tsr")],
                capture_output=True, cwd=self.directory,
            )
            reply = (Path(tmp) / "r.tsr").read_bytes() if done.returncode == 0 else b""
        if not reply:
            self.send_error(500, "openssl ts -reply failed: " + done.stderr.decode(errors="replace")[:200])
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:  # noqa: N802
        body = (self.directory / "ca.pem").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    directory = Path(sys.argv[1]).resolve()
    subprocess.run([str(HERE / "tsa-ca.sh"), str(directory)], check=True)
    host, _, port = sys.argv[2].rpartition(":")
    Handler.directory = directory
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"TSA listening on {host or '127.0.0.1'}:{port}, CA {directory / 'ca.pem'}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
