#!/usr/bin/env bash
# demo.sh DIR: make sample body-camera clips with ffmpeg, preserve them in a fresh embedded
# default under DIR/home, verify them and print the custody log.
set -euo pipefail
DIR=${1:?usage: $0 DIR}
rm -rf "$DIR"
mkdir -p "$DIR/clips"
export CUSTODY_HOME="$DIR/home"
for i in 1 2 3; do
  ffmpeg -loglevel error -y \
    -f lavfi -i "testsrc2=size=640x360:rate=30:duration=6" \
    -f lavfi -i "sine=frequency=$((300 + 100 * i)):sample_rate=48000:duration=6" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 96k -shortest \
    -metadata creation_time="2026-11-0${i}T14:0${i}:00Z" \
    -metadata make="Demo Cameras" -metadata model="BWC-4" -metadata serial_number="SN-000$i" \
    -movflags +use_metadata_tags \
    "$DIR/clips/BWC-00${i}_20261101.mp4"
done
echo "== custody init"; custody init
echo "== custody ingest"; custody ingest "$DIR/clips" --actor demo-technician --note "demo: sample clips"
echo "== custody ingest (same bytes again: another acquisition)"; custody ingest "$DIR/clips/BWC-001_20261101.mp4" --actor demo-technician
first=$(custody hash "$DIR/clips/BWC-001_20261101.mp4" | cut -c1-12)
echo "== custody verify"; custody verify "$first" "$DIR/clips/BWC-002_20261101.mp4" "$DIR/clips/BWC-003_20261101.mp4"
echo "== custody show $first"; custody show "$first"
echo "== custody ledger verify"; custody ledger verify
echo "== custody log"; custody log
echo "== b3sum -c, with the stock tool"; "$(dirname "$0")/b3check.sh" "$DIR/clips"
echo
echo "custody is installed in .venv, not on your PATH. To look at this demo's ledger yourself:"
echo "    .venv/bin/custody --home $CUSTODY_HOME log      (or: . .venv/bin/activate; custody --help)"
