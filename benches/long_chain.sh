#!/usr/bin/env bash
# Benchmark: how `list` and `check --max-log-lag` scale with the length of a shipped log chain.
#
# One Chroma server on a fresh directory; `vecdrill follow --interval 100ms` beside a writer
# (`vecdrill seed`, one record per add, each acknowledged before the next) for WRITE_SECONDS,
# so the follower ships a segment on almost every pass: one chain of some hundreds of segments
# per minute (a follower at the default 1 s ships up to 86,400 a day). Then, ROUNDS times each,
# caches dropped:
#   list     `list --repo`, which tells each chain's reach from its listing, the follower's
#            state and the last segment;
#   check    `check --max-log-lag 1h`, the same reach;
#   verify   `verify`, which reads every segment back (what `list` would cost if it did);
#   baseline `list` by the binary BASELINE names, when given (another build, for an A/B).
# Reported: the number of segments, the median seconds of each, and list / verify (and list /
# baseline). Working files go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

WRITE_SECONDS="${WRITE_SECONDS:-60}"
ROUNDS="${ROUNDS:-3}"
BASELINE="${BASELINE:-}"
. benches/common.sh
prepare
chroma_beside_repo long-chain
"$VECDRILL" seed --url "http://127.0.0.1:$port" --collection warmup --count 500 --dim 64 > /dev/null

"$VECDRILL" follow --repo "$repo" --chroma-dir "$work/chroma" --take-over-purge \
  --interval 100ms > "$work/follow.log" 2>&1 &
follow_pid=$!
until compgen -G "$work/repo/follow/*" > /dev/null; do sleep 0.2; done
timeout "$WRITE_SECONDS" "$VECDRILL" seed --url "http://127.0.0.1:$port" --collection writes \
  --count 10000000 --dim 64 --batch-size 1 > /dev/null 2>&1 || true
kill -TERM "$follow_pid"; wait "$follow_pid"
segments=$(find "$work/repo/logs" -name '*.json' | wc -l)

for round in $(seq 1 "$ROUNDS"); do
  time_of list "$VECDRILL" list --repo "$repo"
  time_of check "$VECDRILL" check --repo "$repo" --max-log-lag 1h
  time_of verify "$VECDRILL" verify --repo "$repo"
  if [ -n "$BASELINE" ]; then
    time_of baseline "$BASELINE" list --repo "$repo"
  fi
done

python3 - "$results" "$segments" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
median = {k: statistics.median(float(r[1]) for r in rows if r[0] == k) for k in {r[0] for r in rows}}
print(f"one chain of {sys.argv[2]} segments, median of {len(rows) // len(median)} rounds")
for k in ("list", "check", "verify", "baseline"):
    if k in median:
        print(f"  {k:9} {median[k]:7.3f} s")
print(f"  list / verify (reads every segment): {median['list'] / median['verify']:.3f}x")
if "baseline" in median:
    print(f"  list / baseline list: {median['list'] / median['baseline']:.3f}x")
PY
