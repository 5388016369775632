#!/usr/bin/env bash
# demo.sh BUILD_DIR — the live local demo behind `make demo`: a real Kafka broker, mmrecd,
# a synthetic multimodal catalog and event stream, and ranked feeds for a few users that
# change as the events arrive, with the daemon's metrics. Stops by itself (about a
# minute) or on Ctrl-C, and removes everything it started.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d /tmp/mmrec-demo.XXXXXX)
daemon_pid=""

cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  "$root/scripts/kafka.sh" stop "$work/kafka" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting a local Kafka broker (KRaft, 127.0.0.1)"
brokers=$("$root/scripts/kafka.sh" start "$work/kafka" | tail -n1)
"$root/scripts/kafka.sh" topics "$work/kafka" mmrec.events:4 mmrec.items:2 mmrec.impressions:2 mmrec.events.dlq:1
echo "broker at $brokers"

say "generating a synthetic multimodal dataset (planted topics, drifting users)"
"$build/mmrec" gen --out "$work/data" --users 200 --items 120 --topics 6 --events 6000 --dims 32,32,32 --seed 7 \
  --start-ms $(( ($(date +%s) - 7200) * 1000 ))

say "starting mmrecd"
"$build/mmrecd" --store.path="$work/store" --kafka.brokers="$brokers" --grpc.listen=127.0.0.1:0 \
  --metrics.listen=127.0.0.1:0 --ready_file="$work/ready" --log.level=warn \
  --item.dim_text=32 --item.dim_image=32 --item.dim_video=32 2>"$work/mmrecd.log" &
daemon_pid=$!
for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
[ -f "$work/ready" ] || { echo "mmrecd did not start:"; cat "$work/mmrecd.log"; exit 1; }
grpc=127.0.0.1:$(sed -n 's/grpc_port=//p' "$work/ready")
metrics=127.0.0.1:$(sed -n 's/metrics_port=//p' "$work/ready")
"$build/mmrec" health --addr "$grpc" >/dev/null && echo "mmrecd SERVING on $grpc, metrics on http://$metrics/metrics"

say "pushing the catalog (text/image/video embeddings) into mmrec.items"
"$build/mmrec" produce --brokers "$brokers" --items "$work/data/items.jsonl"
n_items=$(wc -l <"$work/data/items.jsonl")
for _ in $(seq 100); do
  applied=$(curl -s "http://$metrics/metrics" | sed -n 's/^mmrec_ingest_items_applied_total //p')
  [ "${applied:-0}" -ge "$n_items" ] && break
  sleep 0.1
done
echo "mmrecd stored ${applied:-0} of $n_items catalog items"

candidates=$(seq -s, -f 'i%g' 0 119)
users=(u3 u42 u117)
show_feeds() {
  for u in "${users[@]}"; do
    "$build/mmrec" rank --addr "$grpc" --user "$u" --candidates "$candidates" --top-k 5 | sed 's/^/  /'
  done
  curl -s "http://$metrics/metrics" | grep -E '^mmrec_(ingest_applied|ingest_items_applied|ingest_duplicates|rank_requests|trainer_examples|trainer_publishes)_total|^mmrec_(model_serving_version|trainer_loss) |^mmrec_ingest_dead_lettered_total\{reason="undecodable"\}' | sed 's/^/  metric /'
}

say "feeds before any events (no model yet, everyone cold: popularity only, all zero)"
show_feeds
split -n l/5 -d "$work/data/events.tsv" "$work/data/events-part-"
part=0
for f in "$work/data"/events-part-*; do
  part=$((part + 1))
  say "event stream, part $part of 5: $(wc -l <"$f") events at 400 events/s"
  "$build/mmrec" produce --brokers "$brokers" --events "$f" --rate 400 | sed 's/^/  /'
  sleep 1
  show_feeds
done
say "demo finished: stopping mmrecd (SIGTERM) and Kafka"
