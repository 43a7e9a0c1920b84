#!/usr/bin/env bash
# Benchmark: `vecdrill copy` side by side with `restic copy` on the same backup, in one run.
#
# Data: a Chroma directory of COUNT x DIM embeddings (default 200,000 x 384), cached in
# target/bench-data/ (see common.sh). One backup of it is taken into each source repository
# once; then, ROUNDS times (default 3), into fresh destinations:
#   vecdrill_copy_plain   unencrypted -> unencrypted (chunks named alike: no re-naming)
#   vecdrill_copy_rekey   encrypted -> encrypted under another password (every chunk read
#                         back, re-named and re-encrypted), the case restic's copy always is
#   restic_copy           restic -> restic under another password
#   *_again               the same copy again: nothing new to send
# vecdrill also reads back every pack it wrote before listing the copy; restic does not.
# Targets (issue 25): re-keying copy <= restic's time; a second copy <= restic's.
# Results are ratios of medians; absolute times depend on the machine.
# Needs: restic (apt), .venv (bash .ci/setup). Temporary repositories go under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT="${COUNT:-200000}"
ROUNDS="${ROUNDS:-3}"
DIM="${DIM:-384}"
. benches/common.sh
prepare restic
data=$(chroma_data "$COUNT" "$DIM")

fresh_work copy
echo source-secret > "$work/pw-source"
echo dest-secret > "$work/pw-dest"

results="$work/results.txt"

plain="file://$work/plain" sealed="file://$work/sealed"
"$VECDRILL" backup --repo "$plain" --chroma-dir "$data" --no-history -q
"$VECDRILL" backup --repo "$sealed" --chroma-dir "$data" --no-history -q --password-file "$work/pw-source"
restic -r "$work/restic" --password-file "$work/pw-source" init -q
restic -r "$work/restic" --password-file "$work/pw-source" backup -q "$data"

for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round of $ROUNDS" >&2
  rm -rf "$work/plain-copy" "$work/sealed-copy" "$work/restic-copy"
  restic -r "$work/restic-copy" --password-file "$work/pw-dest" init -q
  for again in "" _again; do
    time_of "vecdrill_copy_plain$again" "$VECDRILL" copy --from-repo "$plain" --repo "file://$work/plain-copy" --json
    time_of "vecdrill_copy_rekey$again" "$VECDRILL" copy --from-repo "$sealed" --from-password-file "$work/pw-source" \
      --repo "file://$work/sealed-copy" --password-file "$work/pw-dest" --json
    time_of "restic_copy$again" restic -r "$work/restic-copy" --password-file "$work/pw-dest" \
      copy --from-repo "$work/restic" --from-password-file "$work/pw-source" -q
  done
done

python3 - "$results" "$(du -sb "$data" | cut -f1)" <<'PY'
import sys, statistics
samples = {}
for line in open(sys.argv[1]):
    label, seconds, kib = line.split()
    samples.setdefault(label, []).append((float(seconds), int(kib)))
rows = {k: (statistics.median(s for s, _ in v), max(m for _, m in v)) for k, v in samples.items()}
t = lambda k: rows[k][0]
print(f"data: {int(sys.argv[2])/2**20:.0f} MiB")
print(f"{'':26}{'median s':>9}{'peak MB':>9}   every run (s)")
for k in rows:
    print(f"{k:26}{t(k):9.2f}{rows[k][1]/1024:9.0f}   {' '.join(f'{s:.2f}' for s, _ in samples[k])}")
print(f"re-keying copy   vecdrill/restic = {t('vecdrill_copy_rekey')/t('restic_copy'):.2f}  (target <= 1.00)")
print(f"plain copy       vecdrill/restic = {t('vecdrill_copy_plain')/t('restic_copy'):.2f}")
print(f"second copy      vecdrill/restic = {t('vecdrill_copy_rekey_again')/t('restic_copy_again'):.2f}  (target <= 1.00)")
PY
