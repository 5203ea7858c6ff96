#!/usr/bin/env bash
# bench.sh: shoal against aria2 on 127.0.0.1, through the shared anchors harness.
#
# Builds bin/shoal, runs ../shared/bench/anchors.sh (relative to the repo root) with shoal
# plugged in as its "new" client, and prints the median MB/s of shoal->shoal and
# aria2->aria2 and their ratio. Nothing leaves 127.0.0.1.
#
# ENVIRONMENT (defaults in brackets)
#   SIZE_MIB [1024]     payload size in MiB (`make bench SIZE_MIB=256` for a quick run)
#   RUNS [2]            rounds; each round runs every pair once
#   PAIRS ["new:new aria2:aria2"]   pairs for anchors.sh; "new" is shoal
#   WORKDIR [/tmp/shoal-bench]      the harness's data, logs and results
#   ANCHORS_SH [<repo>/../shared/bench/anchors.sh]   the harness
#   SHOAL_BIN [<repo>/bin/shoal, rebuilt]   a shoal binary to use instead of building one
#   GO [go]             Go toolchain used for the build
# Every other anchors.sh setting (PIECE_KIB, SKIP_LIMITS, TRANSFER_TIMEOUT, ports, ...)
# passes through from the environment.
#
# Needs: aria2c, opentracker, mktorrent, python3, curl, openssl, ss, /usr/bin/time
# (apt-get install -y aria2 opentracker mktorrent iperf3 time).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ANCHORS_SH=${ANCHORS_SH:-$ROOT/../shared/bench/anchors.sh}
[[ -f $ANCHORS_SH ]] || { echo "bench: anchors harness not found at $ANCHORS_SH (set ANCHORS_SH)" >&2; exit 1; }
ANCHORS_SH=$(cd "$(dirname "$ANCHORS_SH")" && pwd)/$(basename "$ANCHORS_SH")

if [[ -z ${SHOAL_BIN:-} ]]; then
  SHOAL_BIN=$ROOT/bin/shoal
  (cd "$ROOT" && CGO_ENABLED=${CGO_ENABLED:-0} "${GO:-go}" build -o "$SHOAL_BIN" ./cmd/shoal)
fi
[[ -x $SHOAL_BIN ]] || { echo "bench: $SHOAL_BIN is not an executable" >&2; exit 1; }
SHOAL_BIN=$(cd "$(dirname "$SHOAL_BIN")" && pwd)/$(basename "$SHOAL_BIN")
SHOAL_Q=$(printf '%q' "$SHOAL_BIN")

export SIZE_MIB=${SIZE_MIB:-1024}
export RUNS=${RUNS:-2}
export PAIRS=${PAIRS:-"new:new aria2:aria2"}
export WORKDIR=${WORKDIR:-/tmp/shoal-bench}
export NEW_NAME=shoal
# The harness fills in the {placeholders}; {work} is the client's private scratch folder, so
# each run gets fresh resume state. The seeder announces to the torrent's tracker (the
# harness waits for that) and the leecher also dials the seeder directly.
export NEW_SEED_CMD="$SHOAL_Q seed {torrent} --dir {dir} --listen 127.0.0.1:{port} --data-dir {work}/state --json"
export NEW_GET_CMD="$SHOAL_Q get {torrent} --output {dir} --listen 127.0.0.1:{port} --peer {peer} --seed-time 0 --data-dir {work}/state --json"

case $WORKDIR in
  /tmp/*) ;;
  *) echo "bench: WORKDIR must be under /tmp (got $WORKDIR)" >&2; exit 1 ;;
esac
mkdir -p "$WORKDIR"
LOG=$WORKDIR/bench-$(date -u +%Y%m%dT%H%M%SZ).log
echo "bench: shoal $SHOAL_BIN, $SIZE_MIB MiB, $RUNS runs, pairs [$PAIRS], log $LOG" >&2

rc=0
bash "$ANCHORS_SH" 2>&1 | tee "$LOG" || rc=$?

# anchors.sh ends with "results: WORKDIR/runs/<stamp>/results.tsv"
RESULTS=$(sed -n 's/^results: //p' "$LOG" | tail -1)
if [[ -z $RESULTS || ! -s $RESULTS ]]; then
  echo "bench: anchors.sh exited $rc without a results file (see $LOG)" >&2
  exit $(( rc ? rc : 1 ))
fi

python3 - "$RESULTS" "$NEW_NAME" <<'PYEOF' || rc=$?
import statistics, sys

path, new = sys.argv[1], sys.argv[2]
rows = [l.rstrip('\n').split('\t') for l in open(path)]
H = {h: i for i, h in enumerate(rows[0])}
rows = rows[1:]

def num(v):
    try:
        f = float(v)
        return f if f == f else None
    except ValueError:
        return None

def med(rs, key):
    vals = [v for v in (num(r[H[key]]) for r in rs) if v is not None]
    return statistics.median(vals) if vals else None

def fmt(v, spec):
    return '-' if v is None else spec % v

stats, failed = {}, False
print()
print('## shoal bench: %s MiB, piece %s KiB, results %s' % (
    rows[0][H['size_mib']] if rows else '?', ' '.join(sorted({r[H['piece_kib']] for r in rows})), path))
print('%-16s %8s %9s %11s %11s %11s %6s' % ('pair', 'MB/s', 'wire MB/s', '1st byte s', 'leech CPU s', 'seed CPU s', 'ok'))
for pair in [new + '→' + new, 'aria2→aria2'] + sorted({r[H['pair']] for r in rows} - {new + '→' + new, 'aria2→aria2'}):
    rs = [r for r in rows if r[H['pair']] == pair]
    if not rs:
        continue
    ok = [r for r in rs if r[H['status']] == 'ok']
    failed |= len(ok) < len(rs)
    # as in the harness's summary.md: size over the median time of the good runs
    secs = med(ok, 'seconds')
    mbps = int(ok[0][H['size_mib']]) * 1048576 / 1e6 / secs if ok and secs else None
    stats[pair] = mbps
    print('%-16s %8s %9s %11s %11s %11s %6s' % (
        pair, fmt(mbps, '%.1f'), fmt(med(ok, 'wire_mbps'), '%.0f'), fmt(med(ok, 'first_byte_s'), '%.2f'),
        fmt(med(ok, 'leech_cpu_s'), '%.2f'), fmt(med(ok, 'seed_cpu_s'), '%.2f'), '%d/%d' % (len(ok), len(rs))))
    for r in rs:
        if r[H['status']] != 'ok':
            print('    round %s: %s %s' % (r[H['round']], r[H['status']], r[H['note']]))
a, b = stats.get(new + '→' + new), stats.get('aria2→aria2')
if a and b:
    print('ratio %s/aria2 (median MB/s): %.2f' % (new, a / b))
sys.exit(1 if failed else 0)
PYEOF
exit $rc
