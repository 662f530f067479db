"""Reading the manifests of the previous system: real sha256sum/b3sum/md5sum output, CSVs, and
hostile manifests that must be refused naming the file and the line."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import blake3
import pytest

from custody.errors import BadInput
from custody.evidence.manifests import clean_path, parse_columns, read_manifest
from tests.conftest import require_tool

NAMES = ["plain.mp4", "with space.mp4", "back\\slash.mp4", "new\nline.mp4", "sub/inner.mp4"]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sub").mkdir(parents=True)
    for number, name in enumerate(NAMES):
        (root / name).write_bytes(f"clip {number}\n".encode() * (number + 1))
    return root


def run_tool(tool: str, root: Path, *args: str) -> str:
    program = require_tool(tool)
    done = subprocess.run([program, *args, *NAMES], cwd=root, capture_output=True, check=True)
    return done.stdout.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("tool", "args", "name", "algorithm", "digest"),
    [
        ("sha256sum", (), "SHA256SUMS", "sha256", lambda b: hashlib.sha256(b).hexdigest()),
        ("sha256sum", ("--binary",), "SHA256SUMS", "sha256", lambda b: hashlib.sha256(b).hexdigest()),
        ("sha256sum", ("--tag",), "checksums.txt", "sha256", lambda b: hashlib.sha256(b).hexdigest()),
        ("b3sum", (), "clips.b3", "blake3", lambda b: blake3.blake3(b).hexdigest()),
        ("md5sum", (), "checksums.txt", "md5", lambda b: hashlib.md5(b).hexdigest()),
        ("md5sum", ("--binary",), "MD5SUMS", "md5", lambda b: hashlib.md5(b).hexdigest()),
    ],
)
def test_real_tool_output_is_read_with_every_awkward_name(files: Path, tool: str, args: tuple[str, ...], name: str,
                                                            algorithm: str, digest) -> None:  # type: ignore[no-untyped-def]
    text = run_tool(tool, files, *args)
    lines = text.splitlines()
    assert any(line.startswith("\\") and "back\\\\slash.mp4" in line for line in lines)  # escaped by the tool
    assert any(line.startswith("\\") and "new\\nline.mp4" in line for line in lines)
    if "--binary" in args:
        assert " *plain.mp4" in text
    (files / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    manifest = read_manifest(str(files / name))
    assert manifest.algorithm == algorithm
    assert sorted(manifest.entries) == sorted(NAMES)
    for entry in manifest.entries.values():
        assert entry.value == digest((files / entry.path).read_bytes()), entry.path
    data = (files / name).read_bytes()
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.root == str(files)


def test_sixty_four_hex_digits_need_the_algorithm_said(files: Path) -> None:
    (files / "manifest.txt").write_text(run_tool("sha256sum", files))
    with pytest.raises(BadInput, match="SHA-256 or BLAKE3.*--expect-algorithm"):
        read_manifest(str(files / "manifest.txt"))
    assert read_manifest(str(files / "manifest.txt"), algorithm="sha256").algorithm == "sha256"


def test_csv_with_custom_headers_semicolons_a_bom_and_uppercase_hex(tmp_path: Path) -> None:
    sha = hashlib.sha256(b"x").hexdigest().upper()
    path = tmp_path / "vendor-export.csv"
    path.write_bytes(
        "\ufeffCase;File;SHA256 Hash;Officer\r\n2026-1;clips/BWC-001.mp4;{0};10231\r\n\r\n2026-1;\"a;b.mp4\";{0};1\r\n"
        .format(sha).encode()
    )
    manifest = read_manifest(str(path), columns=parse_columns("path=File,digest=sha256 hash"))
    assert manifest.format == "csv" and manifest.algorithm == "sha256"
    assert {p: d.value for p, d in manifest.entries.items()} == {"clips/BWC-001.mp4": sha.lower(), "a;b.mp4": sha.lower()}
    assert manifest.entries["a;b.mp4"].line == 4
    with pytest.raises(BadInput, match="no column 'Digest'"):
        read_manifest(str(path), columns={"digest": "Digest"})


def test_csv_algorithm_from_the_digest_length_when_it_is_md5(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"path,checksum\na.mp4,{hashlib.md5(b'a').hexdigest()}\n")
    assert read_manifest(str(path)).algorithm == "md5"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{h}  ../outside.mp4\n", "line 1: the path '../outside.mp4' is empty, absolute or climbs out"),
        ("{h}  ok.mp4\n{h}  /etc/passwd\n", "line 2: the path '/etc/passwd'"),
        ("{h}  a/../../b.mp4\n", "line 1: the path"),
        ("{h}  a.mp4\n{h}  ./a.mp4\n", "line 2: './a.mp4' is listed a second time (first on line 1)"),
        ("{h}  a.mp4\nzz{t}  b.mp4\n", "line 2: the digest 'zz"),
        ("{h}  a.mp4\n{s}  b.mp4\n", "line 2: the digest has 60 hex digits; SHA256 has 64"),
        ("{h}  a.mp4\njust some words\n", "line 2: is not 'DIGEST  NAME'"),
        ("{h}a.mp4\n", "line 1: is not"),
        ("\\{h}  bad\\q.mp4\n", "line 1: has an escape other than"),
        ("", "no entries"),
    ],
)
def test_hostile_manifests_are_refused_naming_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    digest = hashlib.sha256(b"").hexdigest()
    path = tmp_path / "SHA256SUMS"
    path.write_text(text.format(h=digest, t=digest[2:], s=digest[:60]))
    with pytest.raises(BadInput) as caught:
        read_manifest(str(path))
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
    assert "nothing was ingested" in str(caught.value) or "no entries" in str(caught.value)


def test_every_fault_is_listed_not_only_the_first(tmp_path: Path) -> None:
    digest = hashlib.md5(b"").hexdigest()
    path = tmp_path / "MD5SUMS"
    path.write_text(f"{digest}  ../a\n{digest}  b\nnonsense\n{digest}  b\n")
    with pytest.raises(BadInput) as caught:
        read_manifest(str(path))
    message = str(caught.value)
    assert "line 1:" in message and "line 3:" in message and "line 4:" in message and "line 2:" not in message


def test_binary_and_oversized_manifests_and_special_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "SHA256SUMS"
    path.write_bytes(b"\x00\x01binary")
    with pytest.raises(BadInput, match="NUL bytes"):
        read_manifest(str(path))
    with pytest.raises(BadInput, match="only the bytes of regular files"):
        read_manifest("/dev/zero")
    with pytest.raises(BadInput, match="cannot read the manifest"):
        read_manifest(str(tmp_path / "missing.sha256"))


def test_csv_rows_of_the_wrong_width_are_named(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    digest = hashlib.sha256(b"").hexdigest()
    path.write_text(f"path,sha256\na.mp4,{digest}\nb.mp4\n")
    with pytest.raises(BadInput, match="line 3: has 1 fields; the header has 2"):
        read_manifest(str(path))


def test_clean_path_keeps_paths_inside_the_root() -> None:
    assert clean_path("./a//b/./c.mp4") == "a/b/c.mp4"
    for bad in ("", "/abs", "..", "a/../../x", "a/..", "x\x00y", "./"):
        assert clean_path(bad) is None, bad


def test_md5_is_made_in_the_same_pass_only_when_asked(tmp_path: Path) -> None:
    import io

    from custody.evidence.hashing import CHUNK, hash_stream

    data = bytes(range(256)) * ((CHUNK * 2 + 12345) // 256)  # several chunks of the ring
    plain = hash_stream(io.BytesIO(data))
    both = hash_stream(io.BytesIO(data), md5=True)
    assert plain.md5 is None
    assert both.md5 == hashlib.md5(data).hexdigest()
    assert (both.blake3, both.sha256, both.size) == (plain.blake3, plain.sha256, len(data))


def test_a_manifest_changed_after_it_was_read_is_a_finding(tmp_path: Path) -> None:
    from custody.evidence.expected import Expectation, findings_of
    from custody.evidence.hashing import hash_file
    from custody.evidence.ingest import IngestResult, collect

    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"clip")
    manifest_path = tmp_path / "SHA256SUMS"
    manifest_path.write_text(f"{hashlib.sha256(b'clip').hexdigest()}  a.mp4\n{'0' * 64}  gone.mp4\n")
    expectation = Expectation(read_manifest(str(manifest_path)))
    expectation.planned(c.path for c in collect([str(tmp_path)]).files)
    assert [d.path for d in expectation.unmatched] == ["gone.mp4"]
    assert expectation.compare(str(clip), hash_file(clip))["result"] == "match"
    with manifest_path.open("a") as handle:
        handle.write(f"{'1' * 64}  added-later.mp4\n")
    verdict = expectation.compare(str(manifest_path), hash_file(manifest_path))
    assert verdict["result"] == "manifest-changed" and verdict["absent"] == ["gone.mp4"]
    absent = [IngestResult(path, "absent", reason=reason) for path, reason in expectation.absent()]
    assert absent[0].path == str(tmp_path / "gone.mp4") and "SHA256SUMS line 2" in str(absent[0].reason)
    results = [IngestResult(str(manifest_path), "recorded", declared=verdict), *absent]
    assert [r.status for r in findings_of(results)] == ["recorded", "absent"]


def test_a_long_list_of_faults_is_cut_after_twenty_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "MD5SUMS"
    digest = hashlib.md5(b"").hexdigest()
    path.write_text("".join(f"{digest}  ok-{n}.mp4\n" if n % 2 else f"{digest[:30]}  short-{n}.mp4\n" for n in range(50)))
    with pytest.raises(BadInput) as caught:
        read_manifest(str(path))
    lines = [line.strip() for line in str(caught.value).splitlines()[1:-1]]
    assert lines[:2] == ["line 1: the digest has 30 hex digits; MD5 has 32", "line 3: the digest has 30 hex digits; MD5 has 32"]
    assert lines[19].startswith("line 39:") and lines[20] == "... and 5 more"


def test_windows_paths_are_read_only_when_asked_and_rooted_ones_are_refused(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"").hexdigest()
    path = tmp_path / "export.csv"
    path.write_text(f"Path,SHA256\r\ncam1\\BWC-001.mp4,{digest}\r\n")
    assert list(read_manifest(str(path)).entries) == ["cam1\\BWC-001.mp4"]
    assert list(read_manifest(str(path), windows_paths=True).entries) == ["cam1/BWC-001.mp4"]
    rooted = ("C:\\exports\\a.mp4", "\\\\server\\share\\a.mp4", "..\\a.mp4", "\\a.mp4")
    path.write_text(f"Path,SHA256\r\nok.mp4,{digest}\r\n" + "".join(f"{p},{digest}\r\n" for p in rooted))
    with pytest.raises(BadInput) as caught:
        read_manifest(str(path), windows_paths=True)
    for line, given in enumerate(rooted, 3):
        assert f"line {line}: the path {given!r} is empty, absolute or climbs out" in str(caught.value)
