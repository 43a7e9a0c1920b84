#!/usr/bin/env bash
# Benchmark: is vecdrill's load generator ever the bottleneck?
#
# Against one Chroma query endpoint, in one run, side by side, in ROUNDS rounds whose order
# alternates (the machine is shared and noisy; each ratio is the median over rounds):
#   - throughput at concurrency 8: `vecdrill bench` vs `wrk` (target: vecdrill >= 0.95x wrk)
#   - p50 at concurrency 1: vecdrill vs wrk (target: no worse, ratio <= 1.0)
#   - peak RSS of `vecdrill bench` at 2k and 50k queries (target: < 50 MB, flat)
# Both tools send the same request bodies (stored vectors of the collection). Ratios are the
# result; absolute numbers depend on the machine. Exits 1 when a target is missed.
# Needs: wrk (apt), .venv (bash .ci/setup).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-20000}"
DIM="${DIM:-384}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
ROUNDS="${ROUNDS:-3}"
. benches/common.sh
prepare wrk

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
.venv/bin/chroma run --path "$work/chroma" --port "$port" > "$work/chroma.log" 2>&1 &
chroma_pid=$!
trap 'kill $chroma_pid 2>/dev/null; wait $chroma_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "$url/api/v2/heartbeat" > /dev/null && break; sleep 0.3; done
"$VECDRILL" seed --url "$url" --collection bench --count "$COUNT" --dim "$DIM" --json > /dev/null

# The same 256 stored vectors vecdrill draws its queries from, as a wrk script.
base="$url/api/v2/tenants/default_tenant/databases/default_database/collections"
id=$(curl -sf "$base/bench" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 - "$base/$id" "$COUNT" > "$work/query.lua" <<'PY'
import json, sys, urllib.request
base, count = sys.argv[1], int(sys.argv[2])
bodies = []
for i in range(256):
    req = urllib.request.Request(base + "/get", method="POST", headers={"content-type": "application/json"},
        data=json.dumps({"offset": i * count // 256, "limit": 1, "include": ["embeddings"]}).encode())
    vector = json.load(urllib.request.urlopen(req))["embeddings"][0]
    bodies.append(json.dumps({"query_embeddings": [vector], "n_results": 10, "include": []}))
print('wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\nlocal bodies = {')
for b in bodies:
    print("  [==[" + b + "]==],")
print('}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend')
PY

wrk_run() { # threads connections -> "rps p50_ms"
  wrk -t"$1" -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s "$work/query.lua" "$base/$id/query" > "$work/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; exit 1; fi
  python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", text)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
print(rps, float(m.group(1)) * scale)
PY
}
vecdrill_run() { # concurrency queries -> "qps p50_ms"
  "$VECDRILL" bench --url "$url" --collection bench --concurrency "$1" --queries "$2" --json \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["errors"] == 0, r; print(r["qps"], r["p50_ms"])'
}

echo "== warm-up" >&2
wrk_run 1 1 > /dev/null
results="$work/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS" >&2
  for c in 8 1; do
    if [ $(((round + c) % 2)) -eq 1 ]; then order="wrk vecdrill"; else order="vecdrill wrk"; fi
    for tool in $order; do
      if [ "$tool" = wrk ]; then
        read -r rps p50 <<< "$(wrk_run $((c > 1 ? 2 : 1)) "$c")"
        echo "$round $c wrk $rps $p50" >> "$results"
      else
        # As many queries as wrk answers in the same time, from the round before or a guess.
        queries=$(python3 -c "print(int(${rps:-400} * $SECONDS_PER_RUN))")
        read -r qps p50 <<< "$(vecdrill_run "$c" "$queries")"
        echo "$round $c vecdrill $qps $p50" >> "$results"
      fi
    done
  done
done

rss() { /usr/bin/time -f %M "$VECDRILL" bench --url "$url" --collection bench --concurrency 8 --queries "$1" --json 2>&1 >/dev/null | tail -1; }
rss_small=$(rss 2000)
rss_large=$(rss 50000)

python3 - "$results" <<PY
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rnd, c, tool, rate, p50 = line.split()
    rows[(int(c), tool, int(rnd))] = (float(rate), float(p50))
rounds = sorted({r for (_, _, r) in rows})
med = lambda xs: statistics.median(xs)
thr = med([rows[(8, "vecdrill", r)][0] / rows[(8, "wrk", r)][0] for r in rounds])
p50 = med([rows[(1, "vecdrill", r)][1] / rows[(1, "wrk", r)][1] for r in rounds])
show = lambda c, tool, i: " ".join(f"{rows[(c, tool, r)][i]:.{0 if i == 0 else 3}f}" for r in rounds)
print(f"collection: $COUNT x $DIM, {$SECONDS_PER_RUN}s per run, {len(rounds)} rounds")
print(f"concurrency 8 throughput: wrk {show(8, 'wrk', 0)} req/s; vecdrill {show(8, 'vecdrill', 0)} q/s")
print(f"  median ratio {thr:.3f} (target >= 0.95)")
print(f"concurrency 1 p50: wrk {show(1, 'wrk', 1)} ms; vecdrill {show(1, 'vecdrill', 1)} ms")
print(f"  median ratio {p50:.3f} (target <= 1.0)")
print(f"vecdrill bench peak RSS: {$rss_small/1024:.1f} MB at 2k queries, {$rss_large/1024:.1f} MB at 50k queries (target < 50 MB)")
sys.exit(0 if thr >= 0.95 and p50 <= 1.0 and $rss_large < 50 * 1024 else 1)
PY
