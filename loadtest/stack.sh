# stack.sh — sourced by report.sh, soak.sh and overload.sh: starts a local Kafka broker
# (scripts/kafka.sh) and mmrecd over a generated catalog, pushes the catalog and warm-up
# events, and waits until the trainer has learned them and a model is serving. Cleans up
# on exit.
#
# The caller sets prog (name for messages), root (repo), build (binaries) and needs (the
# binaries it runs); sourcing resolves build, checks those binaries are there, and makes
# work (a fresh temporary folder, removed on exit). stack_start ITEMS USERS PUBLISH_MS sets brokers,
# grpc, metrics_addr and daemon_pid, and writes the mmrecd command to $work/mmrecd_cmd.
# Helpers: say, metrics, metric NAME, wait_metric_ge NAME VALUE SECONDS, rel PATH;
# machine and today describe this host for report rows. With server_cpus / kafka_cpus set
# (taskset CPU lists), mmrecd / the Kafka broker run on those CPUs only; daemon_args are
# more mmrecd options.

build=$(cd "$build" && pwd)
for b in $needs; do
  [ -x "$build/$b" ] || { echo "$prog: $build/$b missing (cmake --build $build --target $b)" >&2; exit 1; }
done
work=$(mktemp -d "/tmp/mmrec-${prog%.sh}.XXXXXX")
daemon_pid=""
kafka_started=0
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
today=$(date -u +%Y-%m-%d)

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
rel() { realpath --relative-to="$root" "$1"; } # commands are shown relative to the repo
stack_cleanup() {
  if [ -n "$daemon_pid" ]; then # SIGTERM, then SIGKILL after 20 s
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$daemon_pid" 2>/dev/null && { say "mmrecd ignored SIGTERM for 20 s: SIGKILL"; kill -KILL "$daemon_pid"; }
    wait "$daemon_pid" 2>/dev/null || true
  fi
  [ $kafka_started = 1 ] && "$root/scripts/kafka.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stack_cleanup EXIT
trap 'echo "$prog: interrupted" >&2; exit 130' INT TERM

metrics() { curl -s --max-time 5 "http://$metrics_addr/metrics"; }
metric() { metrics | awk -v n="$1" '$1 == n { print $2 }'; }
wait_metric_ge() { # name value seconds
  local v
  for _ in $(seq $(($3 * 10))); do
    v=$(metric "$1"); v=${v:-0}
    awk -v a="$v" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }' && return 0
    sleep 0.1
  done
  say "timed out waiting for $1 >= $2 (at ${v:-0})"; return 1
}

stack_start() { # items users publish_ms
  local items=$1 users=$2 publish_ms=$3
  say "starting Kafka, generating $items items x dims 32, starting mmrecd"
  kafka_started=1
  local pin=() kpin=()
  [ -n "${server_cpus:-}" ] && pin=(taskset -c "$server_cpus")
  [ -n "${kafka_cpus:-}" ] && kpin=(taskset -c "$kafka_cpus")
  brokers=$(timeout 120 "${kpin[@]}" "$root/scripts/kafka.sh" start "$work/kafka" | tail -n1)
  "$root/scripts/kafka.sh" topics "$work/kafka" mmrec.events:4 mmrec.items:2 mmrec.impressions:2 mmrec.events.dlq:1 >/dev/null
  local warm_events=$((users * 10))
  "$build/mmrec" gen --out "$work/data" --users "$users" --items "$items" --topics 8 --events "$warm_events" \
    --dims 32,32,32 --seed 7 --start-ms $((($(date +%s) - 8 * 3600) * 1000)) >/dev/null
  "${pin[@]}" "$build/mmrecd" --store.path="$work/store" --kafka.brokers="$brokers" --grpc.listen=127.0.0.1:0 \
    --metrics.listen=127.0.0.1:0 --ready_file="$work/ready" --log.level=warn \
    --item.dim_text=32 --item.dim_image=32 --item.dim_video=32 \
    --trainer.publish_interval_ms="$publish_ms" ${daemon_args:-} 2>"$work/mmrecd.log" &
  daemon_pid=$!
  echo "$(rel "$build")/mmrecd --store.path=DIR --kafka.brokers=127.0.0.1:PORT --item.dim_text=32 --item.dim_image=32" \
    "--item.dim_video=32 --trainer.publish_interval_ms=$publish_ms ${daemon_args:-} # + mmrec gen --items $items --users $users" \
    "--dims 32,32,32 --events $warm_events; mmrec produce (catalog, then warm-up events)" >"$work/mmrecd_cmd"
  for _ in $(seq 300); do [ -f "$work/ready" ] && break; sleep 0.1; done
  [ -f "$work/ready" ] || { say "mmrecd did not start"; cat "$work/mmrecd.log" >&2; exit 1; }
  grpc=127.0.0.1:$(sed -n 's/grpc_port=//p' "$work/ready")
  metrics_addr=127.0.0.1:$(sed -n 's/metrics_port=//p' "$work/ready")
  timeout 60 "$build/mmrec" produce --brokers "$brokers" --items "$work/data/items.jsonl" >/dev/null
  wait_metric_ge mmrec_ingest_items_applied_total "$items" 60
  say "warm-up: $warm_events events, waiting for a serving model"
  timeout 120 "$build/mmrec" produce --brokers "$brokers" --events "$work/data/events.tsv" >/dev/null
  wait_metric_ge mmrec_ingest_consumed_total $((items + warm_events)) 60
  # the warm-up events are hours old: the trainer must be done with them before measuring
  wait_metric_ge mmrec_trainer_events_total "$(metric mmrec_ingest_applied_total)" 120 ||
    { echo "trainer had not consumed the warm-up events (events_total $(metric mmrec_trainer_events_total))" >"$work/warn"; tail -n 20 "$work/mmrecd.log" >&2; }
  wait_metric_ge mmrec_model_serving_version 1 60
  sleep $(((publish_ms + 1999) / 1000))
}
