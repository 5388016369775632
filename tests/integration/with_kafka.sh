#!/usr/bin/env bash
# with_kafka.sh CMD ARGS... — runs CMD against a fresh single-node Kafka broker in a temp
# dir (scripts/kafka.sh run), exporting MMREC_KAFKA_BOOTSTRAP; always cleans up.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=$(mktemp -d /tmp/mmrec-kafka.XXXXXX)
"$root/scripts/kafka.sh" run "$dir" -- "$@"
rc=$?
rm -rf "$dir"
exit $rc
