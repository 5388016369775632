#!/usr/bin/env bash
# Self-test for scripts/kafka.sh: start a throwaway KRaft broker, check the
# default mmrec topics exist, produce one message and consume it back, stop.
# Usage: scripts/kafka-smoke.sh          (exit 0 = the Kafka harness works)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ${1:-} != --inner ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mmrec-kafka-smoke.XXXXXX")
  rc=0
  "$HERE/kafka.sh" run "$dir" -- "$0" --inner "$dir" || rc=$?
  if ((rc == 0)); then rm -rf "$dir"; echo "kafka smoke test: OK"
  else echo "kafka smoke test: FAILED (rc=$rc, broker log kept in $dir/kafka.log)" >&2; fi
  exit "$rc"
fi

# --inner DIR: runs under `kafka.sh run`, with MMREC_KAFKA_BOOTSTRAP set.
dir=$2
k() { "$HERE/kafka.sh" tool "$dir" "$@"; }
bs=$MMREC_KAFKA_BOOTSTRAP

topics=$(k org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --list)
for t in mmrec.events mmrec.items mmrec.impressions mmrec.events.dlq; do
  grep -qx "$t" <<<"$topics" || { echo "missing topic $t; have: $topics" >&2; exit 1; }
done

msg="smoke-$$-$RANDOM"
echo "$msg" | k kafka.tools.ConsoleProducer --bootstrap-server "$bs" --topic mmrec.events \
  --producer-property acks=all
got=$(k org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bs" \
  --topic mmrec.events --from-beginning --max-messages 1 --timeout-ms 20000)
[[ $got == "$msg" ]] || { echo "consumed '$got', expected '$msg'" >&2; exit 1; }
echo "produced and consumed '$msg' via $bs"
