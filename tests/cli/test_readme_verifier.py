"""The README's stand-alone proof verifier, run against a real ledger: outsiders can check a
proof without this tool, and a forged proof fails."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Custody

README = Path(__file__).resolve().parents[2] / "README.md"


def _script() -> str:
    text = README.read_text()
    match = re.search(r"```python\n(# verify_proof\.py.*?)```", text, re.S)
    assert match, "the README must contain verify_proof.py"
    return match.group(1)


def test_readme_verifier_accepts_a_real_proof_and_rejects_a_forged_one(initialized: Custody, tmp_path: Path) -> None:
    script = tmp_path / "verify_proof.py"
    script.write_text(_script())
    for index in range(6):
        clip = tmp_path / f"c{index}"
        clip.write_bytes(f"clip {index}".encode())
        assert initialized("ingest", str(clip)).exit_code == 0
    events = initialized.json("log")
    (tmp_path / "vkey").write_text(initialized("ledger", "key").stdout)
    for event in (events[0], events[3], events[5]):
        ref = event["subject"]["evidence"][:10]
        (tmp_path / "proof").write_text(initialized("ledger", "prove", ref).stdout)
        (tmp_path / "leaf").write_bytes(event["leaf"].encode())
        ok = subprocess.run([sys.executable, str(script), "vkey", "proof", "leaf"], cwd=tmp_path, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert f"event {event['seq']} is in" in ok.stdout and "tree of 6 events" in ok.stdout
    (tmp_path / "leaf").write_bytes(events[5]["leaf"].replace("tech-0412", "tech-0413").encode())
    forged = subprocess.run([sys.executable, str(script), "vkey", "proof", "leaf"], cwd=tmp_path, capture_output=True, text=True)
    assert forged.returncode != 0 and "NOT in the signed tree" in forged.stderr
