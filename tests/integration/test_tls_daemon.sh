#!/usr/bin/env bash
# test_tls_daemon.sh MMRECD MMREC MMREC_LOAD — mmrecd configured for TLS + bearer tokens,
# driven by the mmrec CLI: health over TLS without a token works (probes), Rank without a
# token is UNAUTHENTICATED, with the token (from MMREC_TOKEN) it is served, a client that
# does not trust the CA is refused, and the token never reaches the daemon's log. Then
# mmrec-load over TLS: every call served with --token, every one UNAUTHENTICATED without
# it. Exit 77 without openssl.
set -uo pipefail
mmrecd=$1 mmrec=$2 mmrec_load=$3
command -v openssl >/dev/null || { echo "skip: no openssl"; exit 77; }
w=$(mktemp -d /tmp/mmrec-tls.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$w"' EXIT
fail() { echo "FAIL: $*"; echo "--- mmrecd log"; cat "$w/log"; exit 1; }
q() { openssl "$@" >/dev/null 2>&1 || fail "openssl $*"; }

q req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout "$w/ca.key" -out "$w/ca.pem"
q req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout "$w/other.key" -out "$w/other.pem"
q req -newkey rsa:2048 -nodes -subj /CN=mmrecd -keyout "$w/srv.key" -out "$w/srv.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$w/ext"
q x509 -req -in "$w/srv.csr" -CA "$w/ca.pem" -CAkey "$w/ca.key" -CAcreateserial -days 2 -extfile "$w/ext" -out "$w/srv.pem"
token=s3cr3t-$RANDOM$RANDOM
printf '# clients\nfeed-backend %s\n' "$token" >"$w/tokens"

"$mmrecd" --store.path="$w/store" --ingest.enabled=false --trainer.enabled=false --grpc.listen=127.0.0.1:0 --metrics.listen= \
  --grpc.tls_cert="$w/srv.pem" --grpc.tls_key="$w/srv.key" --grpc.auth_tokens_file="$w/tokens" \
  --ready_file="$w/ready" 2>"$w/log" &
pid=$!
for _ in $(seq 100); do [ -f "$w/ready" ] && break; sleep 0.1; done
[ -f "$w/ready" ] || fail "mmrecd did not start"
addr=127.0.0.1:$(sed -n 's/grpc_port=//p' "$w/ready")

"$mmrec" health --addr "$addr" --ca "$w/ca.pem" | grep -q SERVING || fail "health over TLS without token"
echo "ok health over TLS needs no token"
out=$("$mmrec" rank --addr "$addr" --ca "$w/ca.pem" --user u1 --candidates i1,i2 2>&1) && fail "rank without token succeeded"
echo "$out" | grep -q "status 16" || fail "rank without token: $out"
echo "ok rank without a token: UNAUTHENTICATED"
MMREC_TOKEN=$token "$mmrec" rank --addr "$addr" --ca "$w/ca.pem" --user u1 --candidates i1,i2 >/dev/null \
  || fail "rank with the token"
echo "ok rank with the token (from MMREC_TOKEN)"
MMREC_TOKEN=$token "$mmrec" health --addr "$addr" --ca "$w/other.pem" --deadline-ms 3000 >/dev/null 2>&1 \
  && fail "a client trusting another CA got through"
"$mmrec" health --addr "$addr" --deadline-ms 3000 >/dev/null 2>&1 && fail "a plaintext client got through"
echo "ok untrusted-CA and plaintext clients refused"
# "ok errors UNAUTHENTICATED-count" from mmrec-load --json
counts() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["ok"], j["errors"], j["status"].get("UNAUTHENTICATED", 0))'; }
lflags=(--addr "$addr" --ca "$w/ca.pem" --rate 40 --duration 1 --candidates 5 --items 10 --users 5 --json)
got=$("$mmrec_load" "${lflags[@]}" --token "$token" | counts) || fail "mmrec-load over TLS with the token"
[ "$got" = "40 0 0" ] || fail "mmrec-load with the token: ok/errors/unauthenticated $got, want 40 0 0"
out=$("$mmrec_load" "${lflags[@]}") && fail "mmrec-load exited 0 with every call refused"
got=$(echo "$out" | counts) || fail "mmrec-load without a token: $out"
[ "$got" = "0 40 40" ] || fail "mmrec-load without a token: ok/errors/unauthenticated $got, want 0 40 40"
echo "ok mmrec-load over TLS: 40/40 served with --token, 40/40 UNAUTHENTICATED without"
kill -TERM $pid; wait $pid; rc=$?; pid=""
[ $rc -eq 0 ] || fail "exit code $rc on SIGTERM"
grep -q "$token" "$w/log" && fail "the token appears in the daemon log"
echo "ok SIGTERM exit 0; token never logged"
