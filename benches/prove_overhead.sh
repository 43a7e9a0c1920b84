#!/usr/bin/env bash
# Benchmark (issue 21): what `vecdrill prove` costs beyond what it must do, on the same
# backup in one run.
#
# Data: COUNT x DIM embeddings (default 200,000 x 384; see common.sh), backed up once into a
# fresh repository. Each round times, in an order that alternates from round to round:
#   healthy   `vecdrill restore` into a directory, then Chroma started on it and polled until
#             its heartbeat answers (the restore and start a proof cannot avoid);
#   answering the same, until the first count of each collection has answered too: Chroma
#             loads a collection's index on its first request after a start, which a
#             heartbeat does not trigger and any query (a proof's, or a real restore's first
#             user's) waits for;
#   prove     `vecdrill prove` of the same backup (sandbox, restore, start, healthy, counts,
#             records, probe queries, stop, the verdict kept).
# Reported: medians, and the medians over rounds of prove / healthy and prove / answering.
# Target: prove / answering <= 1.3 (GATE), what proving costs beyond what serving the restored
# backup costs; the script exits 1 above it. Needs .venv (bash .ci/setup). Working files go
# under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"
DIM="${DIM:-384}"
ROUNDS="${ROUNDS:-5}"
GATE="${GATE:-1.3}"
. benches/common.sh
prepare
data=$(chroma_data "$COUNT" "$DIM")
CHROMA=$PWD/.venv/bin/chroma

fresh_work prove
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"
repo="file://$work/repo"
"$VECDRILL" init --repo "$repo" --encryption none > /dev/null 2>&1
"$VECDRILL" backup --repo "$repo" --chroma-dir "$data" --no-history > /dev/null
results="$work/results.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The restore and the start a proof must do, done by hand: wall seconds into $results.
baseline() {
  rm -rf "$work/restored"
  local began ended port pid
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  began=$(date +%s.%N)
  "$VECDRILL" restore --repo "$repo" latest --to "$work/restored" --yes --no-safety-backup > /dev/null
  port=$(free_port)
  "$CHROMA" run --path "$work/restored" --port "$port" > "$work/chroma.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/api/v2/heartbeat" > /dev/null; do sleep 0.05; done
  healthy=$(date +%s.%N)
  local api="http://127.0.0.1:$port/api/v2/tenants/default_tenant/databases/default_database/collections"
  for id in $(curl -sf "$api" | python3 -c 'import json, sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))'); do
    curl -sf "$api/$id/count" > /dev/null
  done
  answered=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$round healthy $(python3 -c "print($healthy - $began)")" >> "$results"
  echo "$round answering $(python3 -c "print($answered - $began)")" >> "$results"
}

proof() {
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e" -o "$work/time.txt" "$VECDRILL" prove --repo "$repo" latest \
    --server-cmd "$CHROMA run --path {dir} --port {port}" --report-dir "$work/reports" > /dev/null 2> "$work/stderr.txt" \
    || { cat "$work/stderr.txt" >&2; exit 1; }
  echo "$round prove $(cat "$work/time.txt")" >> "$results"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  if [ $((round % 2)) -eq 1 ]; then baseline; proof; else proof; baseline; fi
done

python3 - "$results" "$GATE" "$(du -sb "$data" | cut -f1)" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    rnd, label, wall = line.split()
    rows.setdefault(label, {})[int(rnd)] = float(wall)
gate, size = float(sys.argv[2]), int(sys.argv[3])
print(f"data: {size / 2**20:.0f} MiB, {len(rows['prove'])} rounds")
for label in rows:
    runs = " ".join(f"{rows[label][r]:.2f}" for r in sorted(rows[label]))
    print(f"{label:10}{statistics.median(rows[label].values()):8.2f} s   {runs}")
ratio = lambda base: statistics.median(rows["prove"][r] / rows[base][r] for r in rows["prove"])
print(f"prove / (restore + start to healthy)         = {ratio('healthy'):.2f}x")
gated = ratio("answering")
print(f"prove / (restore + start to the first answer) = {gated:.2f}x (target <= {gate}: {'ok' if gated <= gate else 'ABOVE TARGET'})")
sys.exit(0 if gated <= gate else 1)
PY
