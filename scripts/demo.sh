#!/usr/bin/env bash
# make demo, in three parts, all on loopback (each node on its own address 127.0.x.y):
#   1. by hand: one node seeds a 64 MiB file, two others download it; every copy's sha256 checked;
#   2. a swarm: 12 nodes in one process find each other through the DHT alone and share 32 MiB;
#   3. what search costs: shoal compare measures DHT lookups against flooding and random walks
#      at 100 and 1,000 nodes, prints the table and draws the chart.
# The chart and the rows stay in the demo's folder (printed at the end); the data is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL=$PWD/bin/shoal
WORK=$(mktemp -d /tmp/shoal-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
began=$SECONDS

echo "== 1. by hand: making a 64 MiB sample file in $WORK"
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
cleanup; pids=()
rm -rf "$WORK/seed" "$WORK/node2" "$WORK/node3" "$WORK"/state*

echo; echo "== 2. a swarm: 12 nodes find each other through the DHT alone (shoal swarm)"
"$SHOAL" swarm --nodes 12 --mode dht --size 32MiB

echo; echo "== 3. what a search costs: DHT lookups vs flooding and random walks (shoal compare)"
echo "   (a few minutes: it starts 100 and then 1,000 nodes per mode, and runs 200 lookups a row)"
"$SHOAL" compare --nodes 100,1000 --csv "$WORK/compare.csv" --plot "$WORK/compare.svg"

echo
echo "chart: $WORK/compare.svg (open it in a browser); rows: $WORK/compare.csv"
echo "demo passed in $((SECONDS - began)) s"
