#!/usr/bin/env bash
# make demo: one node seeds a 64 MiB file and two others download it over loopback
# (each node on its own address 127.0.0.N), with progress bars; then every copy is checked
# by sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=$PWD/bin/shoal
WORK=$(mktemp -d /tmp/shoal-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== making a 64 MiB sample file in $WORK"
mkdir -p "$WORK/seed"
head -c $((64 << 20)) /dev/urandom > "$WORK/seed/sample.bin"
"$SHOAL" create "$WORK/seed/sample.bin" -o "$WORK/sample.torrent" >/dev/null
"$SHOAL" info "$WORK/sample.torrent"

echo; echo "== node 1 seeds it on 127.0.0.1:6881"
"$SHOAL" seed "$WORK/sample.torrent" -d "$WORK/seed" --listen 127.0.0.1:6881 \
  --data-dir "$WORK/state1" --discovery none --json > "$WORK/seed.log" 2> "$WORK/seed.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '"event":"complete"' "$WORK/seed.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"event":"complete"' "$WORK/seed.log" || { cat "$WORK/seed.err"; exit 1; }

echo "== node 3 downloads in the background, capped at 16 MiB/s (log: $WORK/node3.log)"
"$SHOAL" get "$WORK/sample.torrent" -o "$WORK/node3" --listen 127.0.0.3:6883 \
  --peer 127.0.0.1:6881 --peer 127.0.0.2:6882 --data-dir "$WORK/state3" --discovery none \
  --download-rate 16MiB --seed-time 0 --json > "$WORK/node3.log" &
pids+=($!)
node3=$!

echo "== node 2 downloads from nodes 1 and 3, and stays to serve node 3 for 5 s"
"$SHOAL" get "$WORK/sample.torrent" -o "$WORK/node2" --listen 127.0.0.2:6882 \
  --peer 127.0.0.1:6881 --peer 127.0.0.3:6883 --data-dir "$WORK/state2" --discovery none --seed-time 5s
wait "$node3"

echo; echo "== checking every copy"
want=$(sha256sum < "$WORK/seed/sample.bin" | cut -d' ' -f1)
for n in node2 node3; do
  got=$(sha256sum < "$WORK/$n/sample.bin" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then echo "$n: sha256 $got, want $want"; exit 1; fi
  echo "$n: sha256 $got  OK"
done
echo "node 3 read $(grep -o '"downloaded":[0-9]*' "$WORK/node3.log" | cut -d: -f2) bytes from its peers"
rm -rf "$WORK"
echo "demo passed"
