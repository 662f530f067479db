"""Packet hashing of a ~1 GiB H.264 video vs `ffmpeg -i X -map 0 -c copy -f null -` (time ratio),
and probe time per file (the big video, and the 20 s segment it repeats).

Ours is `custody.media.listing.packet_hashes(X)` called in this process (what `custody ingest` runs for
every video): one ffprobe run listing the packets, SHA-256 of each packet's bytes taken here.
The ffprobe version it records is looked up once per process (by the probe that precedes it at
ingest), so it is looked up before timing.
The stock command demuxes and stream-copies every packet to the null muxer, i.e. the least any
tool must do to see every packet. Both read a file in the page cache; they alternate within each
round. The stock ways to hash packets, `ffmpeg ... -c copy -f framehash -hash sha256` and
`ffprobe -show_data_hash sha256`, are run once each after the rounds.

Targets: time ours/null <= 5.0 (the null copy only demuxes, at ~2.5 GB/s; SHA-256 of every byte
alone costs ~0.8 s per GiB and core here, and the Adler-32 cross-check ~0.4 s, so on 2 cores the
floor is about 3x); ours no more than half the time of stock framehash; `custody.media.probe.probe`
<= 0.15 s per file (median of 10).

The video: 20 s of lossless 1280x720 30 fps H.264 (testsrc2, about 16 Mbit/s) with AAC audio,
repeated with `-stream_loop` and `-c copy` up to the size asked for.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (GIB, Result, check_args, finish, fmt_runs, interleaved, median, parser,  # noqa: E402
                     require, run, timed, warm, workdir)

TARGET_RATIO = 5.0
TARGET_VS_FRAMEHASH = 0.5
TARGET_PROBE = 0.15
PROBES = 10


def make_video(directory: Path, size: int, ffmpeg: str) -> tuple[Path, Path]:
    """A H.264 + AAC MP4 of at least ``size`` bytes, made in seconds, and the 20 s segment
    it repeats."""
    segment = directory / "segment.mp4"
    print("  encoding a 20 s segment (lossless 1280x720 H.264 + AAC) ...", flush=True)
    run([ffmpeg, "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=20",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "60", "-c:a", "aac", "-b:a", "64k",
         "-shortest", str(segment)])
    loops = max(0, -(-size // segment.stat().st_size) - 1)
    video = directory / "video.mp4"
    print(f"  repeating it {loops + 1} times with -c copy ...", flush=True)
    run([ffmpeg, "-loglevel", "error", "-y", "-stream_loop", str(loops), "-i", str(segment),
         "-map", "0", "-c", "copy", str(video)])
    return video, segment


def bench(args: argparse.Namespace) -> list[Result]:
    from custody.media import listing, probe, tools

    ffmpeg, ffprobe = require("ffmpeg"), require("ffprobe")
    size = int(args.size_gib * GIB)
    print(f"bench_media: packet hashing vs ffmpeg -c copy -f null, {args.size_gib:g} GiB H.264, {args.runs} rounds")
    with workdir(args.dir) as tmp:
        video, segment = make_video(tmp, size, ffmpeg)
        actual, segment_size = video.stat().st_size, segment.stat().st_size
        print(f"  video: {actual / GIB:.3f} GiB", flush=True)
        warm(video)
        listing = listing.packet_list(video)
        print(f"  packets: {len(listing.packets)} in {len(listing.streams)} streams "
              f"(video {len(listing.of_stream(0))}, audio {len(listing.of_stream(1))})", flush=True)
        null = [ffmpeg, "-v", "error", "-i", str(video), "-map", "0", "-c", "copy", "-f", "null", "-"]

        def ours(_: int) -> float:
            start = time.perf_counter()
            listing.packet_hashes(video)
            return time.perf_counter() - start

        mine, stock = interleaved(args.runs, ours, lambda _: timed(null))
        framehash = timed([ffmpeg, "-v", "error", "-i", str(video), "-map", "0", "-c", "copy", "-copyinkf",
                           "-f", "framehash", "-hash", "sha256", "-"])
        ffprobe_hash = timed([ffprobe, "-v", "error", "-show_entries", "packet=stream_index,size,data_hash",
                              "-show_data_hash", "sha256", "-of", "compact", str(video)])
        tools._version.cache_clear()
        start = time.perf_counter()
        probe.probe(video)
        first_probe = time.perf_counter() - start
        probes, small = [], []
        for _ in range(PROBES):
            start = time.perf_counter()
            probe.probe(video)
            probes.append(time.perf_counter() - start)
            start = time.perf_counter()
            probe.probe(segment)
            small.append(time.perf_counter() - start)
    mb = actual / 1e6
    ratio = median(mine) / median(stock)
    print(f"  packet_hashes:           {fmt_runs(mine)}  median {median(mine):.3f} s = {mb / median(mine):.0f} MB/s")
    print(f"  ffmpeg -c copy -f null:  {fmt_runs(stock)}  median {median(stock):.3f} s = {mb / median(stock):.0f} MB/s")
    print(f"  per-round time ratios:   {fmt_runs([o / t for o, t in zip(mine, stock)], unit='')}")
    print(f"  time ratio ours/null (of medians): {ratio:.3f}")
    print(f"  reference, one run each: ffmpeg -f framehash -hash sha256 {framehash:.3f} s "
          f"({framehash / median(mine):.1f}x ours); ffprobe -show_data_hash sha256 {ffprobe_hash:.3f} s "
          f"({ffprobe_hash / median(mine):.1f}x ours)")
    print(f"  probe: first call (with ffprobe -version) {first_probe * 1000:.0f} ms; then {fmt_runs([p * 1000 for p in probes], unit='ms', digits=0)}"
          f"  median {median(probes) * 1000:.0f} ms")
    print(f"  probe of the 20 s segment ({segment_size / 1e6:.0f} MB): "
          f"{fmt_runs([p * 1000 for p in small], unit='ms', digits=0)}  median {median(small) * 1000:.0f} ms")
    return [
        Result("media", f"packet hashing time / ffmpeg -c copy -f null ({actual / GIB:.2f} GiB)", f"{ratio:.3f}",
               f"<= {TARGET_RATIO}", ratio <= TARGET_RATIO),
        Result("media", "packet hashing time / stock ffmpeg framehash sha256", f"{median(mine) / framehash:.3f}",
               f"<= {TARGET_VS_FRAMEHASH}", median(mine) / framehash <= TARGET_VS_FRAMEHASH),
        Result("media", f"probe time per file ({actual / GIB:.2f} GiB, median of {PROBES})", f"{median(probes):.3f} s",
               f"<= {TARGET_PROBE} s", median(probes) <= TARGET_PROBE),
    ]


def main() -> None:
    args = parser(__doc__.splitlines()[0], 1).parse_args()
    check_args(args)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    finish(bench(args))


if __name__ == "__main__":
    main()
