#!/usr/bin/env bash
# Benchmark (issue 20): encrypted against unencrypted backup and restore of the same Chroma
# directory, and against restic (which always encrypts), in one run.
#
# Data: COUNT x DIM embeddings (default 200,000 x 384; see common.sh). Each round makes
# fresh repositories and times, in an order that alternates from round to round (so drift on
# a shared machine falls on both sides): vecdrill backup unencrypted and encrypted, restic
# backup, then the three restores. Reported: medians, and the median over rounds of each
# round's encrypted/unencrypted ratio (wall time, and CPU time, steadier on a busy machine).
# Target: encrypted within 1.15x of unencrypted for backup and restore (GATE, default 1.15);
# the script exits 1 when a wall-time ratio is above it.
# Needs: restic (apt), .venv (bash .ci/setup). Working files go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"
DIM="${DIM:-384}"
ROUNDS="${ROUNDS:-5}"
GATE="${GATE:-1.15}"
. benches/common.sh
prepare restic
data=$(chroma_data "$COUNT" "$DIM")

fresh_work encryption
echo "a benchmark password" > "$work/password"
export RESTIC_PASSWORD_FILE="$work/password"
results="$work/results.txt"

# time_of LABEL CMD...: wall, user and system seconds of one command, into $results.
time_of() {
  local label=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$@" > /dev/null 2> "$work/stderr.txt" || { cat "$work/stderr.txt" >&2; exit 1; }
  echo "$round $label $(cat "$work/time.txt")" >> "$results"
}

plain_backup() { time_of plain_backup "$VECDRILL" backup --repo "file://$work/plain" --chroma-dir "$data" --no-history; }
sealed_backup() { time_of sealed_backup "$VECDRILL" backup --repo "file://$work/sealed" --chroma-dir "$data" --no-history --password-file "$work/password"; }
plain_restore() { time_of plain_restore "$VECDRILL" restore --repo "file://$work/plain" latest --to "$work/to-plain" --yes --no-safety-backup; }
sealed_restore() { time_of sealed_restore "$VECDRILL" restore --repo "file://$work/sealed" latest --to "$work/to-sealed" --yes --no-safety-backup --password-file "$work/password"; }

for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  rm -rf "$work/plain" "$work/sealed" "$work/restic" "$work"/to-*
  "$VECDRILL" init --repo "file://$work/plain" --encryption none > /dev/null 2>&1
  "$VECDRILL" init --repo "file://$work/sealed" --password-file "$work/password" > /dev/null
  restic init -q --repo "$work/restic"
  if [ $((round % 2)) -eq 1 ]; then plain_backup; sealed_backup; else sealed_backup; plain_backup; fi
  time_of restic_backup restic backup -q --repo "$work/restic" "$data"
  if [ $((round % 2)) -eq 1 ]; then plain_restore; sealed_restore; else sealed_restore; plain_restore; fi
  time_of restic_restore restic restore -q latest --repo "$work/restic" --target "$work/to-restic"
  diff -r "$data" "$work/to-sealed" > /dev/null || { echo "bench: the encrypted restore differs from the data" >&2; exit 1; }
done

python3 - "$results" "$GATE" "$(du -sb "$data" | cut -f1)" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    rnd, label, wall, user, sys_ = line.split()
    rows.setdefault(label, {})[int(rnd)] = (float(wall), float(user) + float(sys_))
gate, size = float(sys.argv[2]), int(sys.argv[3])
med = lambda label, i: statistics.median(v[i] for v in rows[label].values())
print(f"data: {size / 2**20:.0f} MiB, {len(rows['plain_backup'])} rounds")
print(f"{'':16}{'wall s':>8}{'cpu s':>8}   every run (wall s)")
for label in rows:
    runs = " ".join(f"{rows[label][r][0]:.2f}" for r in sorted(rows[label]))
    print(f"{label:16}{med(label, 0):8.2f}{med(label, 1):8.2f}   {runs}")
failed = False
for op in ("backup", "restore"):
    pairs = [(rows[f"sealed_{op}"][r], rows[f"plain_{op}"][r]) for r in rows[f"plain_{op}"]]
    wall = statistics.median(s[0] / p[0] for s, p in pairs)
    cpu = statistics.median(s[1] / p[1] for s, p in pairs)
    restic = med(f"sealed_{op}", 0) / med(f"restic_{op}", 0)
    verdict = "ok" if wall <= gate else "ABOVE TARGET"
    failed |= wall > gate
    print(f"{op:8} encrypted/unencrypted wall {wall:.2f}x, cpu {cpu:.2f}x (target <= {gate}: {verdict}); encrypted vecdrill/restic {restic:.2f}x")
sys.exit(1 if failed else 0)
PY
