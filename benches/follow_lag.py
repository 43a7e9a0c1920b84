"""Lag sampler for benches/follow_overhead.sh:

    python follow_lag.py CHROMA_SQLITE METRICS_FILE

Every 100 ms until killed: the newest log position in Chroma's database (read-only) and the
position the follower's metrics file says it has shipped. On SIGTERM, prints one lag per
sample, in seconds: from the sample to the first later sample whose shipped position reached
the sample's newest (a sample never reached counts until the last sample). Samples taken while
nothing new was written are left out.
"""
import signal
import sqlite3
import sys
import time

database, metrics = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
samples = []


def shipped():
    try:
        for line in open(metrics):
            if line.startswith("vecdrill_log_last_shipped_seq"):
                return float(line.split()[-1])
    except OSError:
        pass
    return 0.0


def report(*_):
    last_new = None
    for i, (t, newest, _) in enumerate(samples):
        if last_new is not None and newest == last_new:
            continue
        last_new = newest
        reached = next((t2 for t2, _, s in samples[i:] if s >= newest), samples[-1][0])
        print(f"{reached - t:.3f}")
    sys.exit(0)


signal.signal(signal.SIGTERM, report)
while True:
    now = time.time()
    try:
        (newest,) = conn.execute("SELECT COALESCE(MAX(seq_id), 0) FROM embeddings_queue").fetchone()
    except sqlite3.OperationalError:
        newest = samples[-1][1] if samples else 0
    samples.append((now, float(newest), shipped()))
    time.sleep(0.1)
