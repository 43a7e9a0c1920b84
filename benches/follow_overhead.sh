#!/usr/bin/env bash
# Benchmark (issue 23): what `vecdrill follow` costs the database it follows, and how far
# behind the newest write the shipped log stays.
#
# One Chroma server on a fresh directory. A writer (`vecdrill seed`: one add of BATCH records
# of DIM dimensions at a time, each acknowledged before the next, as fast as Chroma accepts)
# writes COUNT records into a new collection per round. Rounds alternate:
#   alone      Chroma as it runs by default (purging its own log);
#   following  `vecdrill follow --take-over-purge --interval INTERVAL` running beside it, into
#              a local repository (started before the writer, its base backup taken; stopped
#              after, shipping what is left).
# The order of the two alternates from pair to pair. While following, a sampler reads every
# 100 ms the newest log position (Chroma's database, read-only) and the position the follower
# says it has shipped (its metrics file); a write's lag is the time from when it was first
# seen to when the follower's shipped position reached it.
# Reported: rows/s of each round, the median over pairs of following / alone (GATE_RATIO: at
# least 0.95, at most 5% slower), and the p99 and maximum of lag over every sample (GATE_LAG:
# at most 2 s). Exits 1 when either gate fails. Working files go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-30000}"
DIM="${DIM:-384}"
BATCH="${BATCH:-100}"
PAIRS="${PAIRS:-4}"
INTERVAL="${INTERVAL:-1s}"
GATE_RATIO="${GATE_RATIO:-0.95}"
GATE_LAG="${GATE_LAG:-2.0}"
. benches/common.sh
prepare
chroma_beside_repo follow
samples="$work/samples.txt"; : > "$samples"
# A first collection, so that the follower's first base is not of an empty database.
"$VECDRILL" seed --url "http://127.0.0.1:$port" --collection warmup --count 2000 --dim "$DIM" > /dev/null

# write NAME: COUNT records into collection NAME; prints rows/s.
write() {
  "$VECDRILL" seed --url "http://127.0.0.1:$port" --collection "$1" --count "$COUNT" --dim "$DIM" \
    --batch-size "$BATCH" --seed "$RANDOM" --json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["rows_per_second"])'
}

alone() {
  echo "$pair alone $(write "alone$pair")" >> "$results"
}

following() {
  local metrics="$work/follow.prom"
  rm -f "$metrics"
  "$VECDRILL" follow --repo "$repo" --chroma-dir "$work/chroma" --take-over-purge \
    --interval "$INTERVAL" --metrics-file "$metrics" > "$work/follow.out" 2> "$work/follow.err" &
  local follower=$!
  until [ -f "$metrics" ]; do sleep 0.05; done
  python3 benches/follow_lag.py "$work/chroma/chroma.sqlite3" "$metrics" >> "$samples" &
  local sampler=$!
  echo "$pair following $(write "following$pair")" >> "$results"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  kill -TERM "$follower"; wait "$follower" || { cat "$work/follow.err" >&2; exit 1; }
}

for pair in $(seq 1 "$PAIRS"); do
  echo "bench: pair $pair of $PAIRS" >&2
  if [ $((pair % 2)) -eq 1 ]; then alone; following; else following; alone; fi
done

python3 - "$results" "$samples" "$GATE_RATIO" "$GATE_LAG" "$COUNT" "$DIM" "$BATCH" "$INTERVAL" <<'PY'
import statistics, sys
results, samples, gate_ratio, gate_lag = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rounds = {}
for line in open(results):
    pair, kind, rate = line.split()
    rounds.setdefault(int(pair), {})[kind] = float(rate)
print(f"writer: {sys.argv[5]} records of {sys.argv[6]} dimensions per round, {sys.argv[7]} per add; follower interval {sys.argv[8]}")
print("pair  alone rows/s  following rows/s  ratio")
ratios = []
for pair, r in sorted(rounds.items()):
    ratio = r["following"] / r["alone"]
    ratios.append(ratio)
    print(f"{pair:>4}  {r['alone']:>12.0f}  {r['following']:>16.0f}  {ratio:.3f}")
median = statistics.median(ratios)
lags = sorted(float(line) for line in open(samples) if line.strip())
p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else float("nan")
print(f"median following / alone: {median:.3f} (gate >= {gate_ratio})")
print(f"lag over {len(lags)} samples: p50 {statistics.median(lags):.2f} s, p99 {p99:.2f} s, max {lags[-1]:.2f} s (gate p99 <= {gate_lag} s)")
ok = median >= gate_ratio and p99 <= gate_lag
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
