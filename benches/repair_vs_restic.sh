#!/usr/bin/env bash
# Benchmark: `vecdrill repair index` side by side with `restic repair index` on the same data,
# in one run.
#
# Data: a Chroma directory of COUNT x DIM embeddings (default 200,000 x 384), cached in
# target/bench-data/ (see common.sh), backed up once into an encrypted vecdrill repository and
# a restic repository. Then, ROUNDS times (default 3):
#   *_lost          every index deleted, then written again from every pack's trailer (restic:
#                   its header)
#   *_nothing       run again with the indexes whole (nothing to read)
#   *_read_all      `--read-all-packs` both: restic reads every pack's header again; vecdrill
#                   reads every pack whole and checks it against its name, which restic does
#                   only in `check --read-data` (timed too, as restic_check_read_data)
# Target (issue 25): rebuilding lost indexes <= restic's time. Results are ratios of medians;
# absolute times depend on the machine.
# Needs: restic (apt), .venv (bash .ci/setup). Temporary repositories go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"
ROUNDS="${ROUNDS:-3}"
DIM="${DIM:-384}"
. benches/common.sh
prepare restic
data=$(chroma_data "$COUNT" "$DIM")

fresh_work repair
echo repair-secret > "$work/pw"
results="$work/results.txt"

ours="file://$work/vecdrill"
"$VECDRILL" backup --repo "$ours" --chroma-dir "$data" --no-history -q --password-file "$work/pw"
restic -r "$work/restic" --password-file "$work/pw" init -q
restic -r "$work/restic" --password-file "$work/pw" backup -q "$data"

vecdrill_repair=("$VECDRILL" repair index --repo "$ours" --password-file "$work/pw" --json)
# restic 0.16 renamed `rebuild-index` to `repair index`.
if restic repair index --help > /dev/null 2>&1; then rebuild=(repair index); else rebuild=(rebuild-index); fi
restic_repair=(restic -r "$work/restic" --password-file "$work/pw" --no-cache "${rebuild[@]}" -q)

for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  rm -f "$work"/vecdrill/index/* "$work"/restic/index/*
  time_of vecdrill_lost "${vecdrill_repair[@]}"
  time_of restic_lost "${restic_repair[@]}"
  time_of vecdrill_nothing "${vecdrill_repair[@]}"
  time_of restic_nothing "${restic_repair[@]}"
  time_of vecdrill_read_all "${vecdrill_repair[@]}" --read-all-packs
  time_of restic_read_all "${restic_repair[@]}" --read-all-packs
  time_of restic_check_read_data restic -r "$work/restic" --password-file "$work/pw" --no-cache check --read-data -q
done
"$VECDRILL" verify --repo "$ours" --password-file "$work/pw" --read-data > /dev/null

python3 - "$results" "$(du -sb "$data" | cut -f1)" <<'PY'
import sys, statistics
samples = {}
for line in open(sys.argv[1]):
    label, seconds, kib = line.split()
    samples.setdefault(label, []).append((float(seconds), int(kib)))
rows = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in samples.items()}
t = lambda k: rows[k][0]
print(f"data: {int(sys.argv[2])/2**20:.0f} MiB")
print(f"{'':20}{'median s':>9}{'peak MB':>9}   every run (s)")
for k in rows:
    print(f"{k:20}{t(k):9.2f}{rows[k][1]/1024:9.0f}   {' '.join(f'{s:.2f}' for s, _ in samples[k])}")
for case in ("lost", "nothing", "read_all"):
    print(f"{case:10} vecdrill/restic = {t('vecdrill_' + case)/t('restic_' + case):.2f}")
print(f"every pack read whole: vecdrill --read-all-packs / restic check --read-data = {t('vecdrill_read_all')/t('restic_check_read_data'):.2f}")
PY
