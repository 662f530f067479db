"""Per-event signatures: `custody ingest` of 1,000 small files by an enrolled technician (every
event signed with their SSH key) against the same ingest by an unsigned station.

    python bench/bench_signed_ingest.py                    # 1,000 files of 4 KiB, 3 rounds
    python bench/bench_signed_ingest.py --files 1000 --runs 5 --agent

Target: signed / unsigned time ratio at most 1.1 (medians of interleaved rounds), with the key
in a file (signed in-process). ``--agent`` also times the key held by ssh-agent (custody then
signs through ``ssh-keygen -Y sign``, one run per transaction), reported without a target;
``--hsm`` times the key held in a SoftHSM2 token (``--key pkcs11:...``: the token signs each
event's SSHSIG blob, one token session per transaction), also reported without a target.
Both sides use the embedded default (SQLite + local store) and skip ffprobe, so that what is
compared is the ledger path that signing changes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Result, check_args, custody_bin, finish, fmt_runs, median, remove, require, workdir  # noqa: E402

TARGET = 1.1


def _files(directory: Path, count: int, size: int) -> Path:
    directory.mkdir()
    for index in range(count):
        (directory / f"BWC-{index:05d}.mp4").write_bytes(os.urandom(size))
    return directory


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "CUSTODY_HOME": str(home), "CUSTODY_ACTOR": "dock-3", "CUSTODY_FFPROBE": "/nonexistent-ffprobe",
            "CUSTODY_DB": "", "CUSTODY_STORE": "", **(extra or {})}


def _home(work: Path, name: str, keys: dict[str, Path] | None, tech_pub: Path | None = None,
          extra: dict[str, str] | None = None) -> Path:
    custody = custody_bin()
    home = work / name
    if keys is None:
        subprocess.run([custody, "init"], env=_env(home), check=True, stdout=subprocess.DEVNULL)
        return home
    subprocess.run([custody, "init", "--admin", "admin-1", "--admin-key", str(keys["admin"])], env=_env(home, extra),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([custody, "--key", str(keys["admin"]), "actor", "enroll", "tech-1", "--role", "technician",
                    "--key-file", str(tech_pub or Path(str(keys["tech"]) + ".pub"))], env=_env(home, extra), check=True,
                   stdout=subprocess.DEVNULL)
    return home


def _ingest(home: Path, files: Path, key: Path | str | None, extra: dict[str, str] | None = None) -> float:
    command = [custody_bin(), *(["--key", str(key)] if key else []), "ingest", str(files)]
    began = time.perf_counter()
    done = subprocess.run(command, env=_env(home, extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"ingest failed: {done.stderr[-400:]}")
    return seconds


def _agent() -> dict[str, str]:
    started = subprocess.run([require("ssh-agent"), "-s"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in started.splitlines():
        if line.startswith(("SSH_AUTH_SOCK=", "SSH_AGENT_PID=")):
            name, value = line.split(";", 1)[0].split("=", 1)
            found[name] = value
    return found


def _softhsm(work: Path) -> tuple[dict[str, str], str, Path]:
    """A SoftHSM2 token of its own with the technician's key generated in it: the environment,
    the key's PKCS#11 URI and its .pub."""
    util = require("softhsm2-util")
    candidates = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
    module = next((m for m in candidates if Path(m).exists()), None)
    if module is None:
        raise SystemExit(f"libsofthsm2.so is in none of {candidates}")
    (work / "tokens").mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {work / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run([util, "--init-token", "--free", "--label", "bench", "--so-pin", "10203040", "--pin", "2468"],
                   env={**os.environ, **env}, check=True, capture_output=True)
    (work / "pin").write_text("2468\n")
    uri = f"pkcs11:token=bench;object=tech-1?module-path={module}&pin-source=file:{work / 'pin'}"
    pub = work / "hsm-tech.pub"
    made = subprocess.run([custody_bin(), "actor", "pubkey", "--generate", "--key", uri], env=_env(work / "none", env),
                          check=True, capture_output=True, text=True)
    pub.write_text(made.stdout)
    return env, uri, pub


def bench(args: argparse.Namespace) -> list[Result]:
    keygen = require("ssh-keygen")
    with workdir(args.dir) as work:
        keys = {}
        for name in ("admin", "tech"):
            keys[name] = work / name
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(keys[name])], check=True)
        files = _files(work / "files", args.files, args.file_size)
        print(f"  {args.files} files of {args.file_size} bytes", flush=True)
        agent = _agent() if args.agent else None
        hsm = _softhsm(work) if args.hsm else None
        plain, signed, via_agent, via_hsm = [], [], [], []
        try:
            if agent is not None:
                subprocess.run(["ssh-add", "-q", str(keys["tech"])], env={**os.environ, **agent}, check=True)
                public_only = work / "agent-tech.pub"
                public_only.write_bytes(Path(str(keys["tech"]) + ".pub").read_bytes())
            for run in range(args.runs):
                home = _home(work, f"plain-{run}", None)
                plain.append(_ingest(home, files, None))
                remove(home)
                home = _home(work, f"signed-{run}", keys)
                signed.append(_ingest(home, files, keys["tech"]))
                remove(home)
                line = f"  round {run + 1}: unsigned {plain[-1]:.2f} s, signed (key file) {signed[-1]:.2f} s"
                if agent is not None:
                    home = _home(work, f"agent-{run}", keys)
                    via_agent.append(_ingest(home, files, public_only, agent))
                    remove(home)
                    line += f", signed (ssh-agent) {via_agent[-1]:.2f} s"
                if hsm is not None:
                    env, uri, pub = hsm
                    home = _home(work, f"hsm-{run}", keys, pub, env)
                    via_hsm.append(_ingest(home, files, uri, env))
                    remove(home)
                    line += f", signed (SoftHSM2) {via_hsm[-1]:.2f} s"
                print(line, flush=True)
        finally:
            if agent is not None:
                subprocess.run([require("ssh-agent"), "-k"], env={**os.environ, **agent}, capture_output=True)
    ratio = median(signed) / median(plain)
    print(f"  unsigned: {fmt_runs(plain)}  signed: {fmt_runs(signed)}", flush=True)
    results = [
        Result("signed ingest", f"unsigned, {args.files} files (median)", f"{median(plain):.2f} s", "report", True),
        Result("signed ingest", "signed, key file (median)", f"{median(signed):.2f} s", "report", True),
        Result("signed ingest", "signed / unsigned", f"{ratio:.3f}", f"<= {TARGET}", ratio <= TARGET),
    ]
    if via_agent:
        agent_ratio = median(via_agent) / median(plain)
        results.append(Result("signed ingest", "signed via ssh-agent / unsigned", f"{agent_ratio:.3f}", "report", True))
    if via_hsm:
        hsm_ratio = median(via_hsm) / median(plain)
        results.append(Result("signed ingest", "signed via SoftHSM2 / unsigned", f"{hsm_ratio:.3f}", "report", True))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=1000, help="number of files (default 1000)")
    p.add_argument("--file-size", type=int, default=4096, help="bytes per file (default 4096)")
    p.add_argument("--runs", type=int, default=3, help="timed rounds (default 3; minimum 3)")
    p.add_argument("--agent", action="store_true", help="also time signing through ssh-agent")
    p.add_argument("--hsm", action="store_true", help="also time signing with the key in a SoftHSM2 token (PKCS#11)")
    p.add_argument("--dir", default=None, help="parent of the temporary work directory (default: /tmp)")
    args = p.parse_args()
    check_args(args)
    finish(bench(args))


if __name__ == "__main__":
    main()
