#!/usr/bin/env bash
# test_python_client.sh MMRECD SRCDIR — the Python client example (docs/examples/
# rank_client.py) against a real mmrecd: health, a ranking, and a clean INVALID_ARGUMENT
# for a bad request. Exit 77 when Debian's python3-grpcio or protoc is missing.
set -uo pipefail
mmrecd=$1 src=$2
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c 'import grpc, google.protobuf' 2>/dev/null && command -v protoc >/dev/null \
  || { echo "skip: needs python3-grpcio, python3-protobuf and protoc"; exit 77; }
w=$(mktemp -d /tmp/mmrec-py.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$w"' EXIT
fail() { echo "FAIL: $*"; echo "--- mmrecd log"; cat "$w/log"; exit 1; }

mkdir "$w/py"
protoc -I "$src/proto" --python_out="$w/py" "$src/proto/mmrec/v1/ranking.proto" || fail "protoc"
protoc -I "$src/proto/grpc/health/v1" --python_out="$w/py" "$src/proto/grpc/health/v1/health.proto" \
  || fail "protoc health"
"$mmrecd" --store.path="$w/store" --ingest.enabled=false --trainer.enabled=false --grpc.listen=127.0.0.1:0 \
  --metrics.listen= --impressions.topic= --ready_file="$w/ready" 2>"$w/log" &
pid=$!
for _ in $(seq 100); do [ -f "$w/ready" ] && break; sleep 0.1; done
[ -f "$w/ready" ] || fail "mmrecd did not start"
addr=127.0.0.1:$(sed -n 's/grpc_port=//p' "$w/ready")

out=$(PYTHONPATH="$w/py" "$py" "$src/docs/examples/rank_client.py" --addr "$addr" --user u1 \
      --candidates i1,i2 2>&1) || fail "rank_client: $out"
echo "$out" | grep -q "health: SERVING" || fail "no SERVING in: $out"
echo "$out" | grep -q "unknown candidates 2" || fail "expected 2 unknown candidates: $out"
echo "ok python client: health SERVING, Rank answered"
out=$(PYTHONPATH="$w/py" "$py" "$src/docs/examples/rank_client.py" --addr "$addr" --user "" 2>&1) \
  && fail "an empty user_id was accepted"
echo "$out" | grep -q "INVALID_ARGUMENT" || fail "expected INVALID_ARGUMENT: $out"
echo "ok python client: a bad request gets INVALID_ARGUMENT with a message"
