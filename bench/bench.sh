#!/usr/bin/env bash
# bench.sh: shoal beside the real BitTorrent clients on 127.0.0.1, through the shared anchors
# harness (../shared/bench/anchors.sh), with the machine's limits measured in the same run.
#
# Builds bin/shoal, runs anchors.sh with shoal plugged in as its "new" client, prints a table
# per pair (MB/s median and range, wire MB/s, time to first byte, leecher CPU seconds and peak
# RSS, seeder CPU seconds), shoal's ratio to the fastest other client, shoal's MB/s as a share
# of the single-core SHA-1 rate and the issue-7 targets as met / not met lines. The same text is
# appended as a section to bench/results/<UTC date>.md. Nothing leaves 127.0.0.1.
#
# ENVIRONMENT (defaults in brackets)
#   SIZE [1GiB]         payload size: 256MiB, 1GiB, 512M, 2G, or a bare number of MiB
#   SIZE_MIB            the same in MiB (older spelling; SIZE wins when both are set)
#   RUNS [2]            rounds; each round runs every pair once, pairs interleaved
#   PAIRS               anchors.sh pairs, "new" is shoal. Default: shoal->shoal, then each
#                       anchor client found on this machine, client->same client:
#                       qbittorrent, anacrolix (the `torrent` CLI at ANACROLIX_BIN), aria2,
#                       rtorrent. A missing client is skipped with a line on stderr.
#   WITH_TRANSMISSION [0]  1 = add aria2->transmission (Transmission 3.00 moves 6-40 MB/s
#                       here, 1 GiB takes minutes, and it cannot seed to itself on loopback;
#                       it is never the fastest other client, so it is off by default)
#   PIECE_KIB [256]     piece size(s) in KiB, passed to anchors.sh
#   SKIP_LIMITS [0]     1 = do not measure SHA-1 / loopback / page-cache limits
#   SWARM [1]           0 = skip the swarm: 1 seeder + 8 leechers in one shoal process
#   SWARM_SIZE [256MiB] the swarm's content size; SWARM_UPLOAD_RATE caps every node's upload
#   WORKDIR [/tmp/shoal-bench]      the harness's data, logs and per-run results
#   RESULTS_DIR [<repo>/bench/results]   where the dated .md goes; RECORD=0 writes nothing
#   ANCHORS_SH [<repo>/../shared/bench/anchors.sh]   the harness
#   ANACROLIX_BIN [/tmp/anchorbench/gobin/torrent]   anacrolix CLI (see ANCHORS.md to build)
#   SHOAL_BIN [<repo>/bin/shoal, rebuilt]   a shoal binary to use instead of building one
#   GO [go]             Go toolchain used for the build
# Every other anchors.sh setting (TRANSFER_TIMEOUT, ports, *_EXTRA, ...) passes through.
#
# Needs: opentracker, mktorrent, python3, curl, openssl, ss, /usr/bin/time, and the anchors:
#   apt-get install -y aria2 transmission-cli qbittorrent-nox rtorrent opentracker mktorrent iperf3 time
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ANCHORS_SH=${ANCHORS_SH:-$ROOT/../shared/bench/anchors.sh}
[[ -f $ANCHORS_SH ]] || { echo "bench: anchors harness not found at $ANCHORS_SH (set ANCHORS_SH)" >&2; exit 1; }
ANCHORS_SH=$(cd "$(dirname "$ANCHORS_SH")" && pwd)/$(basename "$ANCHORS_SH")

# ---- size: SIZE=256MiB / 1GiB / 512M / 2G / 300 (MiB), else SIZE_MIB, else 1 GiB
if [[ -n ${SIZE:-} ]]; then
  s=${SIZE// /}
  if [[ $s =~ ^([0-9]+)([KkMmGg]?)(i?[Bb])?$ ]]; then
    n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
      ''|M|m) SIZE_MIB=$n ;;
      G|g) SIZE_MIB=$((n * 1024)) ;;
      K|k) (( n % 1024 == 0 )) || { echo "bench: SIZE=$SIZE is not a whole number of MiB" >&2; exit 2; }
           SIZE_MIB=$((n / 1024)) ;;
    esac
  else
    echo "bench: cannot read SIZE=$SIZE (use e.g. 256MiB or 1GiB)" >&2; exit 2
  fi
fi
export SIZE_MIB=${SIZE_MIB:-1024}
(( SIZE_MIB > 0 )) || { echo "bench: size must be at least 1 MiB" >&2; exit 2; }

if [[ -z ${SHOAL_BIN:-} ]]; then
  SHOAL_BIN=$ROOT/bin/shoal
  (cd "$ROOT" && CGO_ENABLED=${CGO_ENABLED:-0} "${GO:-go}" build -o "$SHOAL_BIN" ./cmd/shoal)
fi
[[ -x $SHOAL_BIN ]] || { echo "bench: $SHOAL_BIN is not an executable" >&2; exit 1; }
SHOAL_BIN=$(cd "$(dirname "$SHOAL_BIN")" && pwd)/$(basename "$SHOAL_BIN")
SHOAL_Q=$(printf '%q' "$SHOAL_BIN")

# ---- pairs: shoal plus every anchor client installed here
export ANACROLIX_BIN=${ANACROLIX_BIN:-/tmp/anchorbench/gobin/torrent}
if [[ -z ${PAIRS:-} ]]; then
  PAIRS="new:new"
  have() { command -v "$1" >/dev/null 2>&1; }
  if have qbittorrent-nox; then PAIRS+=" qbittorrent:qbittorrent"; else echo "bench: skipping qBittorrent (no qbittorrent-nox; apt-get install qbittorrent-nox)" >&2; fi
  if [[ -x $ANACROLIX_BIN ]]; then PAIRS+=" anacrolix:anacrolix"; else echo "bench: skipping the anacrolix CLI (not at ANACROLIX_BIN=$ANACROLIX_BIN; see ../shared/bench/ANCHORS.md)" >&2; fi
  if have aria2c; then PAIRS+=" aria2:aria2"; else echo "bench: skipping aria2c (apt-get install aria2)" >&2; fi
  if have rtorrent; then PAIRS+=" rtorrent:rtorrent"; else echo "bench: skipping rtorrent (apt-get install rtorrent)" >&2; fi
  if [[ ${WITH_TRANSMISSION:-0} == 1 ]]; then
    if have transmission-cli && have aria2c; then PAIRS+=" aria2:transmission"; else echo "bench: skipping Transmission (needs transmission-cli and aria2c)" >&2; fi
  fi
fi
export PAIRS
export RUNS=${RUNS:-2}
export PIECE_KIB=${PIECE_KIB:-256}
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
echo "bench: shoal $SHOAL_BIN, $SIZE_MIB MiB, $RUNS runs, pieces $PIECE_KIB KiB, pairs [$PAIRS], log $LOG" >&2

export BENCH_STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
export BENCH_UPTIME_BEFORE=$(uptime)
export BENCH_COMMIT=$(cd "$ROOT" && git describe --always --dirty --abbrev=10 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
export BENCH_NPROC=$(nproc)

rc=0
bash "$ANCHORS_SH" 2>&1 | tee "$LOG" || rc=$?
export BENCH_UPTIME_AFTER=$(uptime)

# anchors.sh ends with "results: WORKDIR/runs/<stamp>/results.tsv"
RESULTS=$(sed -n 's/^results: //p' "$LOG" | tail -1)
if [[ -z $RESULTS || ! -s $RESULTS ]]; then
  echo "bench: anchors.sh exited $rc without a results file (see $LOG)" >&2
  exit $(( rc ? rc : 1 ))
fi

OUT=
if [[ ${RECORD:-1} == 1 ]]; then
  RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
  mkdir -p "$RESULTS_DIR"
  OUT=$RESULTS_DIR/$(date -u +%Y-%m-%d).md
fi

python3 - "$RESULTS" "$NEW_NAME" "$OUT" <<'PYEOF' || rc=$?
import os, re, statistics, sys

path, new, out = sys.argv[1], sys.argv[2], sys.argv[3]
run_dir = os.path.dirname(path)
rows = [l.rstrip('\n').split('\t') for l in open(path)]
H = {h: i for i, h in enumerate(rows[0])}
rows = rows[1:]
E = os.environ

def num(v):
    try:
        f = float(v)
        return f if f == f else None
    except ValueError:
        return None

def vals(rs, key):
    return [v for v in (num(r[H[key]]) for r in rs) if v is not None]

def med(rs, key):
    v = vals(rs, key)
    return statistics.median(v) if v else None

def fmt(v, spec):
    return '-' if v is None else spec % v

size_mib = int(E['SIZE_MIB'])
size_gib = size_mib / 1024
pieces = sorted({r[H['piece_kib']] for r in rows}, key=int)

limits = []
lp = os.path.join(run_dir, 'limits.txt')
if os.path.exists(lp):
    limits = [l.rstrip('\n') for l in open(lp) if l.strip()]

def sha1_rate(piece_kib):
    """Single-core Go crypto/sha1 GB/s at the block size closest to the piece size; else openssl."""
    best = None
    for l in limits:
        m = re.match(r'go crypto/sha1 (\d+) KiB blocks: ([\d.]+) GB/s', l)
        if m:
            d = abs(int(m.group(1)) - piece_kib)
            if best is None or d < best[0]:
                best = (d, float(m.group(2)), 'Go crypto/sha1, %s KiB blocks' % m.group(1))
    if best:
        return best[1], best[2]
    for l in limits:
        m = re.match(r'openssl sha1 16KiB blocks: ([\d.]+) GB/s', l)
        if m:
            return float(m.group(1)), 'openssl SHA-1, 16 KiB blocks'
    return None, None

L = []   # markdown lines
L.append('## %s: %s MiB, %s run%s, %s KiB pieces' % (
    E.get('BENCH_STARTED', '?'), size_mib, E.get('RUNS', '?'), '' if E.get('RUNS') == '1' else 's',
    '/'.join(pieces)))
L.append('')
L.append('- machine: %s cores, %s' % (E.get('BENCH_NPROC', '?'), E.get('BENCH_CPU', '?')))
L.append('- shoal commit: %s' % E.get('BENCH_COMMIT', '?'))
L.append('- pairs: %s (anchors.sh results: %s)' % (E.get('PAIRS', '?'), path))
L.append('- load, `uptime` before: %s' % E.get('BENCH_UPTIME_BEFORE', '?').strip())
L.append('- load, `uptime` after:  %s' % E.get('BENCH_UPTIME_AFTER', '?').strip())
L.append('')

failed = False
notes = []
for pk in pieces:
    prow = [r for r in rows if r[H['piece_kib']] == pk]
    labels = []
    for r in prow:
        if r[H['pair']] not in labels:
            labels.append(r[H['pair']])
    ours = new + '→' + new
    labels.sort(key=lambda p: (p != ours,))
    if len(pieces) > 1:
        L.append('### %s KiB pieces' % pk)
        L.append('')
    L.append('| pair | MB/s median (range) | wire MB/s | first byte s | leecher CPU s | leecher CPU s/GiB | leecher peak RSS MiB | seeder CPU s | ok |')
    L.append('|---|---|---|---|---|---|---|---|---|')
    stats = {}
    for pair in labels:
        rs = [r for r in prow if r[H['pair']] == pair]
        ok = [r for r in rs if r[H['status']] == 'ok']
        failed |= len(ok) < len(rs)
        secs = med(ok, 'seconds')
        # as in the harness's summary.md: size over the median time of the good runs
        mbps = size_mib * 1048576 / 1e6 / secs if ok and secs else None
        rng = vals(ok, 'mbps')
        cpu = med(ok, 'leech_cpu_s')
        st = dict(mbps=mbps, first=med(ok, 'first_byte_s'), cpu=cpu,
                  cpu_gib=cpu / size_gib if cpu is not None else None)
        stats[pair] = st
        mb = fmt(mbps, '%.1f')
        if len(rng) > 1:
            mb += ' (%.1f-%.1f)' % (min(rng), max(rng))
        L.append('| %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |' % (
            pair, mb, fmt(med(ok, 'wire_mbps'), '%.0f'), fmt(st['first'], '%.2f'), fmt(cpu, '%.2f'),
            fmt(st['cpu_gib'], '%.2f'), fmt(med(ok, 'leech_rss_mib'), '%.0f'), fmt(med(ok, 'seed_cpu_s'), '%.2f'),
            len(ok), len(rs)))
        for r in rs:
            if r[H['status']] != 'ok':
                notes.append('- %s round %s: %s %s' % (pair, r[H['round']], r[H['status']], r[H['note']]))
    L.append('')
    if notes:
        L.extend(notes)
        L.append('')
        notes = []

    s = stats.get(ours, {})
    a = s.get('mbps')
    others = {p: v['mbps'] for p, v in stats.items() if p != ours and new not in p and v['mbps']}
    if a and others:
        fp = max(others, key=others.get)
        r = a / others[fp]
        L.append('- shoal / fastest other client (%s, %.1f MB/s): **%.2fx** (target 2x: %s)' % (
            fp, others[fp], r, 'met' if r >= 2 else 'not met'))
    else:
        L.append('- shoal / fastest other client: - (no successful runs to compare)')
    rate, what = sha1_rate(int(pk))
    if a and rate:
        pct = a / (rate * 1000) * 100
        L.append('- shoal MB/s as %% of single-core SHA-1 (%s, %.2f GB/s): **%.0f%%** (target 40%%: %s)' % (
            what, rate, pct, 'met' if pct >= 40 else 'not met'))
    else:
        L.append('- shoal MB/s as % of single-core SHA-1: - (no SHA-1 limit measured; SKIP_LIMITS?)')
    ar = [v for p, v in stats.items() if p.startswith('aria2→aria2')]
    sc = s.get('cpu_gib')
    if sc is not None and ar and ar[0]['cpu_gib'] is not None:
        L.append('- leecher CPU s/GiB, shoal %.2f vs aria2c %.2f: %s' % (
            sc, ar[0]['cpu_gib'], 'met' if sc <= ar[0]['cpu_gib'] else 'not met'))
    else:
        L.append('- leecher CPU s/GiB vs aria2c: - (missing shoal or aria2c runs)')
    f = s.get('first')
    if f is not None:
        L.append('- time to first byte (5%% of the payload on the wire, 0.1 s resolution), shoal %.2f s vs 0.2 s: %s' % (
            f, 'met' if f < 0.2 else 'not met'))
    else:
        L.append('- time to first byte vs 0.2 s: - (not measured)')
    L.append('')

if limits:
    L.append('Limits in the same run (anchors.sh, %s MiB payload):' % size_mib)
    L.append('')
    L.extend('    ' + l for l in limits)
    L.append('')

text = '\n'.join(L) + '\n'
print()
print(text, end='')
if out:
    new_file = not os.path.exists(out)
    with open(out, 'a') as fh:
        if new_file:
            fh.write('# shoal bench results, %s\n\n' % os.path.basename(out)[:-3])
            fh.write('Written by `make bench` (bench/bench.sh): shoal and the anchor clients over 127.0.0.1, '
                     'through ../shared/bench/anchors.sh. Timings on a shared machine are noisy; '
                     'compare ratios and CPU seconds from the same section.\n\n')
        fh.write(text)
    print('bench: appended to %s' % out)
sys.exit(1 if failed else 0)
PYEOF

# ---- swarm: 1 seeder and 8 leechers in one shoal process, each on its own 127.0.0.N, the
# leechers finding each other through a tracker; the seeder's upload as copies of the content,
# and the total time against the seeder's upload bound.
if [[ ${SWARM:-1} == 1 ]]; then
  SWARM_SIZE=${SWARM_SIZE:-256MiB}
  echo "bench: swarm, 1 seeder + 8 leechers of $SWARM_SIZE, $RUNS runs" >&2
  python3 - "$SHOAL_BIN" "$SWARM_SIZE" "$RUNS" "$OUT" "${SWARM_UPLOAD_RATE:-}" <<'PYEOF' || rc=$?
import json, statistics, subprocess, sys, time
shoal, size, runs, out, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows, failed = [], 0
for r in range(runs):
    cmd = [shoal, 'swarm', '--nodes', '9', '--seeders', '1', '--size', size, '--mode', 'tracker', '--json']
    if rate:
        cmd += ['--upload-rate', rate]
    p = subprocess.run(cmd, capture_output=True, text=True)
    summary = None
    for line in p.stdout.splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if isinstance(o, dict) and 'seeder_upload_multiple' in o:
            summary = o
    if p.returncode != 0 or summary is None:
        failed += 1
        print('bench: swarm round %d failed (exit %d): %s' % (r + 1, p.returncode, p.stderr.strip()[-300:]), file=sys.stderr)
        continue
    rows.append(summary)
L = ['### Swarm: 1 seeder + 8 leechers of %s (`shoal swarm --nodes 9 --mode tracker%s`), %s' %
     (size, ' --upload-rate ' + rate if rate else '', time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())), '']
if rows:
    L.append('| round | total s | seeder bound s (from) | total / bound | seeder upload (copies) | leechers\' share of uploads |')
    L.append('|---|---|---|---|---|---|')
    for i, o in enumerate(rows):
        up = o.get('uploaded_by_seeders', 0) + o.get('uploaded_by_leechers', 0)
        L.append('| %d | %.1f | %.1f (%s) | %.2f | %.2fx | %.0f%% |' % (
            i + 1, o.get('seconds', 0), o.get('bound_seconds', 0), o.get('bound_from', '?'), o.get('bound_ratio', 0),
            o.get('seeder_upload_multiple', 0), 100.0 * o.get('uploaded_by_leechers', 0) / up if up else 0))
    m = statistics.median(o.get('seeder_upload_multiple', 0) for o in rows)
    L.append('')
    L.append('- seeder upload, median %.2fx the content (target under 3x: %s); total time median %.1f s, %.2fx the seeder\'s upload bound' % (
        m, 'met' if m < 3 else 'not met', statistics.median(o.get('seconds', 0) for o in rows),
        statistics.median(o.get('bound_ratio', 0) for o in rows)))
if failed:
    L.append('- %d of %d swarm rounds failed' % (failed, runs))
text = '\n'.join(L) + '\n\n'
print()
print(text, end='')
if out:
    with open(out, 'a') as fh:
        fh.write(text)
sys.exit(1 if failed else 0)
PYEOF
fi
exit $rc
