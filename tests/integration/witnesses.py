"""Real witnesses for tests: ``custody witness serve`` as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def custody_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUSTODY_HOME": str(home), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=60)


@dataclass
class WitnessProcess:
    """One witness: its directory, verifier key and (while running) its server process."""

    directory: Path
    name: str
    port: int = field(default_factory=free_port)
    vkey: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self, *log_vkeys: str) -> WitnessProcess:
        home = self.directory.parent
        result = custody_cli("witness", "init", self.name, "--dir", str(self.directory), home=home)
        assert result.returncode == 0, result.stderr
        self.vkey = result.stdout.strip()
        for vkey in log_vkeys:
            added = custody_cli("witness", "add-log", vkey, "--dir", str(self.directory), home=home)
            assert added.returncode == 0, added.stderr
        return self

    def start(self) -> WitnessProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "CUSTODY_HOME": str(self.directory.parent)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "witness", "serve", "--dir", str(self.directory),
             "--listen", f"127.0.0.1:{self.port}", "--quiet"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"witness exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            try:
                with urllib.request.urlopen(self.url + "/key", timeout=1) as answer:
                    assert answer.read().decode().strip() == self.vkey
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the witness did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


def anchors_config(witnesses: list[WitnessProcess], quorum: int, *, timeout: float = 5, extra: str = "") -> str:
    lines = ["[anchors]", f"witness_quorum = {quorum}", f"timeout = {timeout}"]
    for witness in witnesses:
        lines += ["[[anchors.witnesses]]", f'url = "{witness.url}"', f'key = "{witness.vkey}"']
    return "\n".join(lines) + "\n" + extra


@dataclass
class TsaProcess:
    """infra/dev/tsa-server.py (OpenSSL's 'openssl ts -reply' over HTTP) on a free loopback port."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsr"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def start(self) -> TsaProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "infra" / "dev" / "tsa-server.py"), str(self.directory), f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the TSA exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ca.pem", timeout=1) as answer:
                    if answer.read().startswith(b"-----BEGIN CERTIFICATE"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the TSA did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def config(self) -> str:
        return f'[anchors.tsa]\nurl = "{self.url}"\nca = "{self.ca}"\n'
