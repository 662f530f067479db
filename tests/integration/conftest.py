"""Real S3 servers for the integration and contract tests.

* ``ceph_rgw``: ONE throwaway Ceph cluster with radosgw for the whole session, started by
  ``infra/dev/start-ceph-rgw.sh`` in a temporary directory on a free loopback port (memstore, so
  it starts in a couple of seconds) and stopped with ``stop-ceph-rgw.sh --purge`` at the end.
* ``moto_server``: moto's S3 server as a subprocess, only for showing what a server that does
  not enforce locks looks like to ``lock_self_test``.
* ``private_rgw``: a second cluster of its own, for a test that kills its gateway.

A service that cannot start makes its tests skip with the reason, or fail when the environment
variable ``CI`` is set. ``tests/contract/conftest.py`` loads this file too (it cannot see these
fixtures otherwise), so the session's cluster is kept on the pytest config object and shared.

Credentials reach the code under test only through boto3's standard chain: ``rgw_credentials``
sets ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` for one test and isolates it from the
user's own AWS configuration.

PostgreSQL:

* ``postgres``: ONE throwaway PostgreSQL cluster for the session, started by
  ``infra/dev/start-postgres.sh`` (Debian's postgresql, initdb in a temporary directory, a free
  loopback port, ``fsync=off`` since its data is thrown away) and stopped with
  ``stop-postgres.sh --purge``. Like the Ceph cluster, it skips or (with ``CI``) fails.
* ``pg_url``: a fresh database in that cluster for one test (``CREATE DATABASE``), dropped after.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import pytest

from tests.conftest import use_credentials  # noqa: F401  (imported by the integration tests from here)

REPO = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO / "infra" / "dev" / "start-ceph-rgw.sh"
STOP_SCRIPT = REPO / "infra" / "dev" / "stop-ceph-rgw.sh"
START_TIMEOUT = 180
TEST_PART_SIZE = 5 << 20
TEST_MULTIPART_THRESHOLD = 6 << 20
SHARED_BUCKET_PREFIX = "custody-it"


class ServiceUnavailable(Exception):
    """A test service could not be started; the message says why."""


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when running in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"required test service unavailable (CI is set): {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class CephRgw:
    """One running cluster started by the project's script in ``directory``."""

    directory: Path
    port: int
    env: dict[str, str]
    start_seconds: float
    log: str = ""
    buckets: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.env["S3_ENDPOINT_URL"]

    @property
    def access_key(self) -> str:
        return self.env["AWS_ACCESS_KEY_ID"]

    @property
    def secret_key(self) -> str:
        return self.env["AWS_SECRET_ACCESS_KEY"]

    def _gateway_pid(self) -> int:
        for line in (self.directory / "pids").read_text().splitlines():
            name, pid = line.split()
            if name == "client.rgw":
                return int(pid)
        raise ServiceUnavailable(f"no radosgw pid recorded in {self.directory / 'pids'}")

    def kill_gateway(self) -> None:
        """SIGKILL this cluster's radosgw (a crash), checking first that the PID is ours."""
        pid = self._gateway_pid()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert comm == "radosgw" and str(self.directory / "ceph.conf") in cmdline, (comm, cmdline)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def start_gateway(self) -> None:
        """Start radosgw again on the same port (the monitor and OSD kept running)."""
        conf = self.directory / "ceph.conf"
        pid_file = self.directory / "run" / "client.rgw.pid"
        old = self._gateway_pid()
        subprocess.run(
            ["radosgw", "-c", str(conf), "-n", "client.rgw", "--rgw-init-timeout", "60",
             "--client-mount-timeout", "60"],
            check=True, capture_output=True, timeout=90,
        )
        deadline = time.monotonic() + 60
        new = old
        while time.monotonic() < deadline:
            try:
                new = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                new = old
            if new != old and http_answers(self.endpoint):
                break
            time.sleep(0.1)
        else:
            raise ServiceUnavailable("radosgw did not come back within 60 s")
        lines = (self.directory / "pids").read_text().splitlines()
        kept = [line for line in lines if not line.startswith("client.rgw ")]
        (self.directory / "pids").write_text("\n".join([*kept, f"client.rgw {new}"]) + "\n")

    def stop(self, remove: bool = False) -> None:
        """Stop the daemons with the project's stop script; ``remove`` deletes the directory."""
        subprocess.run([str(STOP_SCRIPT), str(self.directory), "--purge"], capture_output=True, timeout=120)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def run_start_script(
    start: Path, stop: Path, args: list[str], env: dict[str, str], required: tuple[str, ...]
) -> tuple[dict[str, str], float, str]:
    """Run one of the project's service start scripts: (its ``export`` settings, seconds it took,
    its stderr). On failure the service is purged and ``ServiceUnavailable`` carries the log."""
    began = time.monotonic()
    try:
        done = subprocess.run([str(start), *args], env=env, capture_output=True, text=True, timeout=START_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        subprocess.run([str(stop), args[0], "--purge"], capture_output=True, timeout=120)
        raise ServiceUnavailable(f"could not run {start}: {exc}") from exc
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise ServiceUnavailable(f"{start.name} failed (exit {done.returncode}):\n{tail}")
    exported: dict[str, str] = {}
    for line in done.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            exported[name] = value
    missing = [name for name in required if name not in exported]
    if missing:
        raise ServiceUnavailable(f"{start.name} printed no {'/'.join(missing)}: {done.stdout!r}")
    return exported, elapsed, done.stderr


def start_ceph_rgw(directory: Path) -> CephRgw:
    """Run the project's start script; raise ``ServiceUnavailable`` with its log on failure."""
    port = free_port()
    env = {**os.environ, "CEPH_OBJECTSTORE": "memstore", "CEPH_STORE_GB": "4",
           "CEPH_START_TIMEOUT": "60"}
    exported, elapsed, log = run_start_script(
        START_SCRIPT, STOP_SCRIPT, [str(directory), str(port)], env, ("S3_ENDPOINT_URL",)
    )
    return CephRgw(directory, port, exported, elapsed, log)


_SHARED_ATTRIBUTE = "_custody_test_services"


def _shared(config: pytest.Config) -> dict[str, Any]:
    services = getattr(config, _SHARED_ATTRIBUTE, None)
    if services is None:
        services = {}
        setattr(config, _SHARED_ATTRIBUTE, services)
    return services


def session_rgw(config: pytest.Config) -> CephRgw:
    """The session's one Ceph RGW, started on first use and stopped when pytest finishes.

    Two copies of this module may be loaded (see the module docstring), so the cluster is
    recognised by behaviour, not by class."""
    services = _shared(config)
    if "rgw" not in services:
        directory = Path(tempfile.mkdtemp(prefix="custody-rgw-"))
        try:
            services["rgw"] = start_ceph_rgw(directory)
        except ServiceUnavailable as exc:
            shutil.rmtree(directory, ignore_errors=True)
            services["rgw"] = exc
        else:
            config.add_cleanup(lambda: services["rgw"].stop(remove=True))
    found = services["rgw"]
    if isinstance(found, Exception):
        unavailable(f"Ceph RGW: {found}")
    return cast(CephRgw, found)


def admin_client(rgw: CephRgw, endpoint: str | None = None) -> Any:
    """A plain boto3 client with explicit keys: the tests' independent view of the server."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=rgw.access_key,
        aws_secret_access_key=rgw.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def lock_bucket(config: pytest.Config, rgw: CephRgw, name: str = "shared") -> str:
    """A bucket with Object Lock (and a 1-day default COMPLIANCE retention), created once."""
    if name not in rgw.buckets:
        bucket = f"{SHARED_BUCKET_PREFIX}-{name}-{uuid.uuid4().hex[:8]}"
        client = admin_client(rgw)
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        client.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
            },
        )
        rgw.buckets[name] = bucket
    return rgw.buckets[name]


def moto_lock_bucket(monkeypatch: pytest.MonkeyPatch, moto: MotoServer, name: str) -> tuple[str, Any]:
    """Credentials for moto and a new bucket there created with Object Lock, named ``name``
    plus a random suffix, with a plain boto3 client to it: for showing what a server that does
    not enforce locks looks like."""
    import boto3
    from botocore.config import Config

    use_credentials(monkeypatch, "testing", "testing")
    client = boto3.session.Session().client(
        "s3", endpoint_url=moto.endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return bucket, client


@pytest.fixture(scope="session")
def ceph_rgw(request: pytest.FixtureRequest) -> CephRgw:
    return session_rgw(request.config)


@pytest.fixture
def rgw_credentials(ceph_rgw: CephRgw, monkeypatch: pytest.MonkeyPatch) -> CephRgw:
    use_credentials(monkeypatch, ceph_rgw.access_key, ceph_rgw.secret_key)
    return ceph_rgw


@pytest.fixture
def s3_admin(ceph_rgw: CephRgw) -> Any:
    return admin_client(ceph_rgw)


@pytest.fixture
def rgw_bucket(request: pytest.FixtureRequest, ceph_rgw: CephRgw) -> str:
    return lock_bucket(request.config, ceph_rgw)


@pytest.fixture
def rgw_url(rgw_bucket: str, ceph_rgw: CephRgw) -> str:
    """A store URL with a fresh prefix in the shared Object Lock bucket."""
    return f"s3://{rgw_bucket}/it-{uuid.uuid4().hex[:10]}?endpoint_url={ceph_rgw.endpoint}&region=us-east-1"


@pytest.fixture
def private_rgw(rgw_credentials: CephRgw, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephRgw]:
    """A second cluster owned by one test (same keys as the shared one), purged afterwards."""
    directory = tmp_path_factory.mktemp("private-rgw")
    try:
        rgw = start_ceph_rgw(directory)
    except ServiceUnavailable as exc:
        unavailable(f"private Ceph RGW: {exc}")
    try:
        yield rgw
    finally:
        rgw.stop()


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server on a free loopback port, for the duration of the session."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    try:
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=sink, stderr=subprocess.STDOUT,
            )
    except OSError as exc:
        unavailable(f"moto server: {exc}")
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not http_answers(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            output = log.read_text(errors="replace")[-500:]
            unavailable(f"moto server did not start (is moto[server] installed?): {output}")
        time.sleep(0.1)
    try:
        yield MotoServer(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- PostgreSQL ---------------------------------------------------------------------------

PG_START_SCRIPT = REPO / "infra" / "dev" / "start-postgres.sh"
PG_STOP_SCRIPT = REPO / "infra" / "dev" / "stop-postgres.sh"


@dataclass
class PostgresServer:
    """One running cluster started by the project's script in ``directory``; superuser
    ``postgres``, trust authentication on 127.0.0.1 only."""

    directory: Path
    env: dict[str, str]
    start_seconds: float

    @property
    def port(self) -> int:
        return int(self.env["PGPORT"])

    @property
    def bindir(self) -> Path:
        return Path(self.env["PG_BINDIR"])

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database`` as ``user``."""
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres", user: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit as ``user``; the rows it returned, if any."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=user, dbname=database, autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def psql(self, *args: str, database: str = "postgres", user: str = "postgres") -> subprocess.CompletedProcess[str]:
        """Run psql (ON_ERROR_STOP) with ``args``; the completed process, not checked."""
        return subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", user, "-d", database, *args],
            capture_output=True, text=True, timeout=60,
        )

    def stop(self, remove: bool = False) -> None:
        subprocess.run([str(PG_STOP_SCRIPT), str(self.directory), "--purge"], capture_output=True, timeout=60)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(directory: Path) -> PostgresServer:
    """Run the project's start script; raise ``ServiceUnavailable`` with its log on failure."""
    env = {**os.environ, "PG_FSYNC": "off", "PG_START_TIMEOUT": "60"}
    exported, elapsed, _ = run_start_script(
        PG_START_SCRIPT, PG_STOP_SCRIPT, [str(directory)], env, ("PGPORT", "PG_BINDIR")
    )
    return PostgresServer(directory, exported, elapsed)


def session_postgres(config: pytest.Config) -> PostgresServer:
    """The session's one PostgreSQL cluster, started on first use and stopped when pytest
    finishes. Its directory is made under the system's temporary directory, not pytest's (whose
    0700 parent the unprivileged server user could not enter when the tests run as root)."""
    services = _shared(config)
    if "postgres" not in services:
        directory = Path(tempfile.mkdtemp(prefix="custody-pg-"))
        try:
            services["postgres"] = start_postgres(directory)
        except ServiceUnavailable as exc:
            subprocess.run([str(PG_STOP_SCRIPT), str(directory), "--purge"], capture_output=True, timeout=60)
            shutil.rmtree(directory, ignore_errors=True)
            services["postgres"] = exc
        else:
            config.add_cleanup(lambda: services["postgres"].stop(remove=True))
    found = services["postgres"]
    if isinstance(found, Exception):
        unavailable(f"PostgreSQL: {found}")
    return cast(PostgresServer, found)


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> PostgresServer:
    return session_postgres(request.config)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty database (owner ``postgres``), dropped after the test."""
    name = f"custody_{uuid.uuid4().hex[:12]}"
    postgres.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.url(name)
    finally:
        postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
SOFTHSM_TOKENS = {"custody-ledger": "2468", "custody-people": "1357"}
"""The SoftHSM2 tokens made for the session, by label, with their user PINs."""


@dataclass(frozen=True)
class SoftHsm:
    module: str
    conf: Path
    pins: dict[str, Path]
    """A file holding each token's user PIN, by token label."""

    def uri(self, token: str, label: str, pin: Path | None = None) -> str:
        return f"pkcs11:token={token};object={label}?module-path={self.module}&pin-source=file:{pin or self.pins[token]}"


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """SoftHSM2 tokens of their own (SOFTHSM2_CONF in a temporary directory). The library reads
    SOFTHSM2_CONF once per process, so every test of the session shares these tokens; each test
    uses its own key labels."""
    from tests.conftest import require_tool

    util = require_tool("softhsm2-util")
    module = next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)
    assert module is not None, f"softhsm2-util is installed but libsofthsm2.so is in none of {SOFTHSM_MODULES}"
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pins = {}
    for label, pin in SOFTHSM_TOKENS.items():
        subprocess.run([util, "--init-token", "--free", "--label", label, "--so-pin", "10203040", "--pin", pin],
                       check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})
        pins[label] = directory / f"{label}.pin"
        pins[label].write_text(pin + "\n")
    return SoftHsm(module, conf, pins)
