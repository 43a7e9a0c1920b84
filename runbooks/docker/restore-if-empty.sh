#!/bin/sh
# Restore-on-start for a Chroma volume (seed 000's): when the data directory holds no
# database yet, restore the newest backup of it into it; otherwise leave it alone. Run before
# Chroma starts (the Compose example's `restore` service). An empty repository is no error:
# a first deployment starts empty and the backup service makes the first backup.
#   VECDRILL_REPO  the repository (required)
#   DATA_DIR       the data directory (default /volume/chroma): a directory inside the
#                  volume, not the mount point, which a restore cannot swap
#   SOURCE         whose backups (HOST:PATH as `vecdrill list` shows it; default: the only one)
set -eu
: "${VECDRILL_REPO:?set VECDRILL_REPO to the repository URL}"
data="${DATA_DIR:-/volume/chroma}"
if [ -f "$data/chroma.sqlite3" ]; then
  echo "restore-if-empty: $data holds a database; nothing restored"
  exit 0
fi
if ! vecdrill list --repo "$VECDRILL_REPO" --json 2>/dev/null | grep -q '"id"'; then
  echo "restore-if-empty: no backup in $VECDRILL_REPO yet; starting empty"
  exit 0
fi
set -- restore --repo "$VECDRILL_REPO" latest --to "$data" --yes
if [ -n "${SOURCE:-}" ]; then set -- "$@" --source "$SOURCE"; fi
echo "restore-if-empty: $data is empty; restoring the newest backup"
exec vecdrill "$@"
