# Sourced by the benchmarks, from the project root.

# prepare [TOOL]...: check that each comparison TOOL is installed (from Debian's packages),
# set up the virtual environments and build the release binary into $VECDRILL.
prepare() {
  local tool
  for tool in "$@"; do
    command -v "$tool" > /dev/null || { echo "$tool is not installed: apt-get install $tool" >&2; exit 2; }
  done
  bash .ci/setup
  cargo build --release --locked -q
  VECDRILL=$PWD/target/release/vecdrill
}

# chroma_data COUNT DIM: print the path of a Chroma directory of COUNT x DIM embeddings,
# written once by `vecdrill seed` and cached in target/bench-data/.
chroma_data() {
  local count=$1 dim=$2
  local data="$PWD/target/bench-data/chroma-${count}x${dim}"
  if [ ! -f "$data/chroma.sqlite3" ]; then
    echo "bench: generating $count x $dim into $data (one time)" >&2
    mkdir -p "$data"
    local port pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    .venv/bin/chroma run --path "$data" --port "$port" > "$data.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/v2/heartbeat" > /dev/null && break; sleep 0.3; done
    "$VECDRILL" seed --url "http://127.0.0.1:$port" --collection bench --count "$count" --dim "$dim" --batch-size 5000 >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
  fi
  echo "$data"
}

# time_of LABEL CMD...: wall seconds and peak RSS (KiB) of one command, caches dropped first,
# appended as "LABEL SECONDS KIB" to $results ($work holds its scratch files).
time_of() {
  local label=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" > /dev/null 2> "$work/stderr.txt" || { cat "$work/stderr.txt" >&2; exit 1; }
  echo "$label $(cat "$work/time.txt")" >> "$results"
}

# fresh_work NAME: an empty target/bench-NAME as $work, where the runs record their history
# (never the user's).
fresh_work() {
  work="$PWD/target/bench-$1"
  rm -rf "$work"; mkdir -p "$work"
  export VECDRILL_HISTORY="$work/history.sqlite"
}

# chroma_beside_repo NAME: a fresh target/bench-NAME ($work) holding an unencrypted repository
# ($repo), the history and an empty $results, and a Chroma server on a free port ($port) over
# the empty directory $work/chroma, up before this returns and stopped when the script exits.
chroma_beside_repo() {
  fresh_work "$1"
  mkdir "$work/chroma"
  repo="file://$work/repo"
  "$VECDRILL" init --repo "$repo" --encryption none > /dev/null 2>&1
  results="$work/results.txt"; : > "$results"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/chroma run --path "$work/chroma" --port "$port" > "$work/chroma.log" 2>&1 &
  chroma_pid=$!
  trap 'kill $chroma_pid 2>/dev/null || true' EXIT
  until curl -sf "http://127.0.0.1:$port/api/v2/heartbeat" > /dev/null; do sleep 0.1; done
}
