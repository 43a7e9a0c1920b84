#!/usr/bin/env bash
# Benchmark: vecdrill backup/restore side by side with restic and tar|zstd on the same data,
# in one run.
#
# Data: a Chroma directory of COUNT x DIM embeddings (default 200,000 x 384), written once by
# `vecdrill seed` and cached in target/bench-data/. Targets (issue 4): full backup <= 0.5x
# restic's time, unchanged re-backup <= restic's, restore <= 0.5x restic's, backup peak RSS
# < 200 MB. Results are ratios; absolute times depend on the machine. Each measurement is taken
# ROUNDS times (default 3), fresh repositories each round, and the median is reported: a shared
# machine's noise moves a single run by 10-20%.
# Needs: restic (apt), .venv (bash .ci/setup). Temporary repositories go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"
ROUNDS="${ROUNDS:-3}"
DIM="${DIM:-384}"
. benches/common.sh
prepare restic
data=$(chroma_data "$COUNT" "$DIM")

fresh_work work
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$work/restic"

results="$work/results.txt"

for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  rm -rf "$work/vecdrill" "$work/restic" "$work"/restore-* "$work/data.tar.zst"
  restic init -q
  time_of vecdrill_backup "$VECDRILL" backup --repo "file://$work/vecdrill" --chroma-dir "$data" --json --no-history
  time_of restic_backup restic backup -q "$data"
  time_of tar_zstd sh -c "tar -C '$data' -cf - . | zstd -1 -q -T1 -o '$work/data.tar.zst'"
  time_of vecdrill_rebackup "$VECDRILL" backup --repo "file://$work/vecdrill" --chroma-dir "$data" --json --no-history
  time_of restic_rebackup restic backup -q "$data"
  time_of vecdrill_restore "$VECDRILL" restore --repo "file://$work/vecdrill" latest --to "$work/restore-vecdrill" --yes --no-safety-backup --json
  time_of restic_restore restic restore latest --target "$work/restore-restic"
  time_of untar_zstd sh -c "mkdir -p '$work/restore-tar' && zstd -dc '$work/data.tar.zst' | tar -C '$work/restore-tar' -xf -"
done

size_of() { du -sb "$1" | cut -f1; }
python3 - "$results" "$(size_of "$data")" "$(size_of "$work/vecdrill")" "$(size_of "$work/restic")" "$(size_of "$work/data.tar.zst")" <<'PY'
import sys, statistics
samples = {}
for line in open(sys.argv[1]):
    label, seconds, kib = line.split()
    samples.setdefault(label, []).append((float(seconds), int(kib)))
# Median time; peak memory is the largest seen.
rows = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in samples.items()}
data, vd, rs, tz = (int(x) for x in sys.argv[2:6])
t = lambda k: rows[k][0]
mb = lambda k: rows[k][1] / 1024
print(f"data: {data/2**20:.0f} MiB; stored: vecdrill {vd/2**20:.0f} MiB, restic {rs/2**20:.0f} MiB, tar|zstd -1 {tz/2**20:.0f} MiB")
print(f"{'':22}{'median s':>9}{'peak MB':>9}   every run (s)")
for k in rows:
    print(f"{k:22}{t(k):9.2f}{mb(k):9.0f}   {' '.join(f'{s:.2f}' for s, _ in samples[k])}")
print(f"full backup  vecdrill/restic = {t('vecdrill_backup')/t('restic_backup'):.2f}  (target <= 0.50); vecdrill/tar|zstd = {t('vecdrill_backup')/t('tar_zstd'):.2f}")
print(f"re-backup    vecdrill/restic = {t('vecdrill_rebackup')/t('restic_rebackup'):.2f}  (target <= 1.00)")
print(f"restore      vecdrill/restic = {t('vecdrill_restore')/t('restic_restore'):.2f}  (target <= 0.50); vecdrill/untar = {t('vecdrill_restore')/t('untar_zstd'):.2f}")
print(f"backup peak RSS vecdrill {mb('vecdrill_backup'):.0f} MB (target < 200)")
PY
