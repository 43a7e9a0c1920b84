#!/usr/bin/env bash
# Benchmark: vecdrill export/import side by side with the Python client on the same data, in
# one run (issue 5).
#
# Data: COUNT x DIM records (default 20,000 x 384) written by `vecdrill seed` into a fresh
# Chroma directory under target/bench-export/. Targets: API export rows/s >= 1.8x the Python
# client paging 5000 at a time; offline export >= 5x; import rows/s reported against the
# Python client's `add` (batches of 5000). Peak memory of each vecdrill command is reported.
# Results are ratios; absolute rates depend on the machine. Needs .venv (bash .ci/setup).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-20000}"
DIM="${DIM:-384}"
. benches/common.sh
prepare
PY=$PWD/.venv/bin/python
fresh_work export
results="$work/results.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_chroma() { # DIR -> sets $port and $pid
  port=$(free_port)
  .venv/bin/chroma run --path "$1" --port "$port" > "$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/api/v2/heartbeat" > /dev/null && return; sleep 0.25; done
  echo "chroma did not start; see $1.log" >&2; exit 1
}
stop_chroma() { kill "$pid"; wait "$pid" 2> /dev/null || true; }
# vecdrill_rate LABEL CMD...: rows/s from --json output and peak RSS (KiB).
vecdrill_rate() {
  local label=$1; shift
  /usr/bin/time -f "%M" -o "$work/rss.txt" "$@" --json > "$work/out.json"
  echo "$label $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_per_second"])' "$work/out.json") $(cat "$work/rss.txt")" >> "$results"
}
python_rate() {
  local label=$1; shift
  /usr/bin/time -f "%M" -o "$work/rss.txt" "$PY" benches/python_client.py "$@" > "$work/out.json"
  echo "$label $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows_per_second"])' "$work/out.json") $(cat "$work/rss.txt")" >> "$results"
}

start_chroma "$work/source"
"$VECDRILL" seed --url "http://127.0.0.1:$port" --collection bench --count "$COUNT" --dim "$DIM" --batch-size 5000 > /dev/null
# Each side twice, alternating, so neither benefits from going second.
for round in 1 2; do
  python_rate "python_export_$round" export "$port" bench
  vecdrill_rate "vecdrill_export_$round" "$VECDRILL" export --url "http://127.0.0.1:$port" --collection bench --out "$work/api.jsonl"
done
stop_chroma
vecdrill_rate vecdrill_offline_export "$VECDRILL" export --chroma-dir "$work/source" --collection bench --out "$work/offline.jsonl"

start_chroma "$work/python-target"
python_rate python_import import "$port" bench "$work/api.jsonl"
stop_chroma
start_chroma "$work/vecdrill-target"
vecdrill_rate vecdrill_import "$VECDRILL" import --url "http://127.0.0.1:$port" --in "$work/api.jsonl"
stop_chroma

python3 - "$results" "$COUNT" "$DIM" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, rate, rss = line.split()
    rows[label] = (float(rate), int(rss) / 1024)
best = lambda prefix: max(v[0] for k, v in rows.items() if k.startswith(prefix))
py_export, vd_export = best("python_export"), best("vecdrill_export")
print(f"data: {sys.argv[2]} x {sys.argv[3]}-d")
print(f"{'':26}{'rows/s':>10}{'peak MB':>9}")
for label, (rate, mb) in rows.items():
    print(f"{label:26}{rate:10.0f}{mb:9.0f}")
print(f"API export     vecdrill/python = {vd_export / py_export:.2f}  (target >= 1.8)")
print(f"offline export vecdrill/python = {rows['vecdrill_offline_export'][0] / py_export:.2f}  (target >= 5)")
print(f"import         vecdrill/python = {rows['vecdrill_import'][0] / rows['python_import'][0]:.2f}")
PY
