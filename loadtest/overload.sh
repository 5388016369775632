#!/usr/bin/env bash
# overload.sh — the overload run of issue 10 (not part of CI). Starts a local Kafka broker
# and mmrecd with a trained model (loadtest/stack.sh), then, --runs times: measures the
# capacity (OK calls/s, closed loop, 2 callers per server CPU: each handler slot always has a
# call waiting, none long enough to count as overload; Rank 100 candidates), the
# unloaded p99 of OK calls at a modest open-loop rate (--modest x capacity), and offers --factor x capacity open loop
# for --duration s while a probe keeps offering the modest rate, per second
# (mmrec-load --interval-ms 1000), from the same moment until 15 s after the overload.
# Verdicts per run: excess refused at once (RESOURCE_EXHAUSTED, p99 within 2x the
# unloaded p99, nothing left to time out), admitted (OK) calls' p99 within 2x the
# unloaded p99, mmrecd alive and SERVING afterwards, and the probe back to normal (every
# later second with OK p99 within 2x the unloaded p99 and no refusal) within 5 s of the
# load dropping. Prints a table and, with --out, rewrites the block between the
# overload.sh markers of that file (docs/RELIABILITY.md). Exit 1 when a verdict fails.
# --split (the default on 2+ CPUs) runs mmrecd on the first half of the CPUs and the load
# generator, the probe and the Kafka broker on the other half (taskset), as if clients and
# Kafka were on other hosts: they take no CPU from the server. --split off shares them all.
# mmrecd runs with --trainer.nice=19 (training takes only what serving leaves; at 10 its
# slices still cost the admitted calls' p99 2-3 ms) plus $daemon_args from the environment.
#
#   loadtest/overload.sh [--build DIR] [--runs N] [--duration S] [--factor F] [--modest F]
#                        [--items N] [--users N] [--retrieve-k K] [--split on|off] [--out FILE]
# --retrieve-k K: Rank retrieves K items from mmrecd's index (a few bytes per request, so a
# generator on its own CPUs can offer 3x) instead of sending 100 candidates.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
runs=2
secs=60
factor=3
modest=0.1
tail_s=15 # the probe goes on this long after the overload
items=1000
users=2000
out=""
split=on
retrieve_k=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2 ;;
    --runs) runs=$2 ;;
    --duration) secs=$2 ;;
    --factor) factor=$2 ;;
    --modest) modest=$2 ;;
    --items) items=$2 ;;
    --users) users=$2 ;;
    --out) out=$2 ;;
    --split) split=$2 ;;
    --retrieve-k) retrieve_k=$2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "overload.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
prog=overload.sh
needs="mmrecd mmrec mmrec-load"
daemon_args="--trainer.nice=19 ${daemon_args:-}" # read by stack.sh: training yields to serving
cpus=($(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')) # the CPUs we may use
ncpu=${#cpus[@]}
client=()
server_ncpu=$ncpu
cpus_note="**The load generator runs on the same cores as mmrecd**: its CPU time is in the table, and it is CPU the server does not get, so the capacity and every latency here are lower/higher than on a separate client host."
if [ "$split" = on ] && [ "$ncpu" -ge 2 ]; then
  half=$((ncpu / 2))
  server_cpus=$(IFS=,; echo "${cpus[*]:0:half}") # read by stack.sh
  client_cpus=$(IFS=,; echo "${cpus[*]:half}")
  kafka_cpus=$client_cpus # read by stack.sh
  client=(taskset -c "$client_cpus")
  server_ncpu=$half
  cpus_note="mmrecd runs on CPUs $server_cpus; the load generator, the probe and the Kafka broker on CPUs $client_cpus (taskset), as if on other hosts, so they take no CPU from the server; the capacity is that of $half of the $ncpu CPUs."
fi
. "$root/loadtest/stack.sh"
callers=$((2 * server_ncpu))
t_start=$(date +%s)

stack_start "$items" "$users" 1000

work_args="--candidates 100"
[ "$retrieve_k" -gt 0 ] && work_args="--retrieve-k $retrieve_k"
load=("${client[@]}" "$build/mmrec-load" --addr "$grpc" --users "$users" --items "$items" $work_args --json)
show="$(rel "$build")/mmrec-load --addr 127.0.0.1:PORT --users $users --items $items $work_args"
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; } # utime + stime, clock ticks
ok_rate='j["latency_ms"]["ok"]["count"] / j["elapsed_s"]' # calls served OK per second: refusals are not capacity
rate_of() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(max(20, int(round(eval(sys.argv[3]) * float(sys.argv[2])))))' "$1" "$2" "$ok_rate"; }
json_get() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"j": j}))' "$@"; }

for r in $(seq "$runs"); do
  say "run $r: capacity (closed loop, $callers callers, 10 s)"
  timeout 60 "${load[@]}" --mode closed --concurrency "$callers" --duration 10 >"$work/cap_$r.json"
  high=$(rate_of "$work/cap_$r.json" "$factor")
  low=$(rate_of "$work/cap_$r.json" "$modest")
  sleep 1
  say "run $r: unloaded, $low/s for 15 s"
  timeout 60 "${load[@]}" --rate "$low" --duration 15 --connections 2 >"$work/base_$r.json"
  sleep 1
  say "run $r: $high/s (${factor}x) for ${secs}s, probe $low/s for $((secs + tail_s))s"
  d0=$(cpu_s "$daemon_pid")
  timeout $((secs + tail_s + 60)) "${load[@]}" --rate "$low" --duration $((secs + tail_s)) --connections 1 \
    --interval-ms 1000 >"$work/probe_$r.json" &
  probe=$!
  /usr/bin/time -f '%U %S' -o "$work/gen_cpu_$r" timeout $((secs + 60)) "${load[@]}" --rate "$high" \
    --duration "$secs" --connections 2 >"$work/over_$r.json" || true
  echo "$(cpu_s "$daemon_pid") $d0" >"$work/daemon_cpu_$r"
  wait "$probe" || true
  alive=0
  kill -0 "$daemon_pid" 2>/dev/null && timeout 10 "$build/mmrec" health --addr "$grpc" >"$work/health_$r" 2>&1 && alive=1
  echo "$alive" >"$work/alive_$r"
  say "run $r: admitted p99 $(json_get "$work/over_$r.json" 'j["latency_ms"]["ok"]["p99"]') ms" \
    "(unloaded $(json_get "$work/base_$r.json" 'j["latency_ms"]["ok"]["p99"]') ms), alive $alive"
  sleep 2
done
cmds="$show --mode closed --concurrency $callers --duration 10                          # capacity C
$show --rate \$((C*$modest)) --duration 15 --connections 2                        # unloaded
$show --rate \$((C*$factor)) --duration $secs --connections 2 &                   # overload, and at once:
$show --rate \$((C*$modest)) --duration $((secs + tail_s)) --interval-ms 1000     # probe"

python3 - "$work" "$runs" "$secs" "$factor" "$modest" "$machine" "$today" "${out:-}" "$(rel "$build")" \
  "$(cat "$work/mmrecd_cmd")" "$cmds" "$(($(date +%s) - t_start))" "$cpus_note" "$work_args" \
  "--duration $secs --factor $factor --retrieve-k $retrieve_k --split $split" <<'PY'
import json, os, sys
work, runs, secs, factor, modest, machine, today, out, build, daemon_cmd, cmds, took, cpus_note, work_args, opts = sys.argv[1:16]
runs, secs = int(runs), int(secs)
J = lambda n: json.load(open(os.path.join(work, n)))
rows, ok_all = [], True
for r in range(1, runs + 1):
    cap, base, over, probe = J(f"cap_{r}.json"), J(f"base_{r}.json"), J(f"over_{r}.json"), J(f"probe_{r}.json")
    u = base["latency_ms"]["ok"]["p99"]
    ok, shed = over["latency_ms"]["ok"], over["latency_ms"]["resource_exhausted"]
    ok_sent = over["latency_ms"]["ok_from_actual_send"]
    st = over["status"]
    other = over["errors"] - st.get("RESOURCE_EXHAUSTED", 0)
    gu, gs = (float(x) for x in open(os.path.join(work, f"gen_cpu_{r}")).read().split()[-2:])
    d1, d0 = (float(x) for x in open(os.path.join(work, f"daemon_cpu_{r}")).read().split())
    alive = open(os.path.join(work, f"alive_{r}")).read().strip() == "1"
    # probe: seconds after the overload's end until every later second is normal again
    iv = [v for v in probe["intervals"] if v["t_s"] < secs + 15]
    normal = lambda v: v["ok"] > 0 and v["p99"] <= 2 * u and v["resource_exhausted"] == 0 and v["other"] == 0
    after = [v for v in iv if v["t_s"] >= secs]
    rec = next((i for i in range(len(after)) if all(normal(v) for v in after[i:])), None)
    during = [v["p99"] for v in iv if v["t_s"] < secs and v["ok"]]
    c = {
        "refused at once": shed["count"] > 0 and shed["p99"] <= 2 * u and other == 0,
        "admitted p99 <= 2x unloaded": ok["count"] > 0 and ok["p99"] <= 2 * u,
        "no crash": alive,
        "recovered <= 5 s": rec is not None and rec <= 5,
    }
    ok_all &= all(c.values())
    rows.append(dict(r=r, cap=cap["latency_ms"]["ok"]["count"] / cap["elapsed_s"], low=base["offered_rate"], u=u, high=over["offered_rate"],
                     ach=over["achieved_rate"], ok=ok, ok_sent=ok_sent, shed=shed, other=other, st=st, dropped=over["dropped"],
                     missed=over["missed_schedule"], lag=over["max_send_lag_ms"], gen=gu + gs, daemon=d1 - d0,
                     rec=rec, during=max(during) if during else float("nan"),
                     pr_ok=sum(v["ok"] for v in iv if v["t_s"] < secs),
                     pr_shed=sum(v["resource_exhausted"] for v in iv if v["t_s"] < secs), c=c,
                     series=" ".join((f"{v['p99']:.1f}" if v["ok"] else "-")
                                     + (f" (r{v['resource_exhausted']})" if v["resource_exhausted"] else "")
                                     + (f" (e{v['other']})" if v["other"] else "") for v in after)))
P = lambda b: "PASS" if b else "FAIL"
md = []
w = md.append
w(f"Generated by `loadtest/overload.sh --build {build} --runs {runs} {opts}` in {took} s on {machine}, {today}: "
  f"a local Kafka broker, `mmrecd` (trainer on at `trainer.nice=19`, 1 s publishes, default `grpc.threads` = "
  f"the CPUs it may run on, and "
  f"`grpc.max_inflight`) over a generated catalog with a trained model, Rank with `{work_args}`. "
  f"{cpus_note} CPU seconds used during the {secs} s overload are in the table.\n")
w("```sh\n" + daemon_cmd + "\n" + cmds + "\n```\n")
w("| run | capacity C (closed loop, OK calls/s) | modest rate, unloaded OK p99 | offered (x" + factor + "), achieved | "
  "OK: n, p50 / p99 ms (p99 from the actual send) | RESOURCE_EXHAUSTED: n, p50 / p99 ms | other errors, dropped, missed schedule (max lag) | "
  f"CPU s in {secs} s: generator / mmrecd | probe during overload: OK, refused, worst 1-s OK p99 | "
  "probe 1-s OK p99 after the load drops (ms; rN: N refused, eN: N other errors) | machine | date |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|")
for x in rows:
    w(f"| {x['r']} | {x['cap']:,.0f}/s | {x['low']:,.0f}/s, {x['u']:.2f} ms | {x['high']:,.0f}/s, {x['ach']:,.0f}/s | "
      f"{x['ok']['count']:,}, {x['ok']['p50']:.2f} / **{x['ok']['p99']:.2f}** ({x['ok_sent']['p99']:.2f}) | "
      f"{x['shed']['count']:,}, {x['shed']['p50']:.2f} / {x['shed']['p99']:.2f} | "
      f"{x['other']:,} ({', '.join(f'{k} {v}' for k, v in x['st'].items() if k not in ('OK', 'RESOURCE_EXHAUSTED')) or 'none'}), "
      f"{x['dropped']:,}, {x['missed']:,} ({x['lag']:.0f} ms) | {x['gen']:.0f} / {x['daemon']:.0f} | "
      f"{x['pr_ok']:,}, {x['pr_shed']:,}, {x['during']:.1f} ms | {x['series']} | {machine} | {today} |")
w("")
for x in rows:
    c = x["c"]
    w(f"- Run {x['r']}: excess refused at once (RESOURCE_EXHAUSTED p99 {x['shed']['p99']:.2f} ms <= 2 x "
      f"{x['u']:.2f} ms, {x['other']} other errors): **{P(c['refused at once'])}**; admitted p99 "
      f"{x['ok']['p99']:.2f} ms <= 2 x {x['u']:.2f} = {2 * x['u']:.2f} ms: **{P(c['admitted p99 <= 2x unloaded'])}**; "
      f"no crash (alive and SERVING after): **{P(c['no crash'])}**; recovery: "
      + (f"normal from second {x['rec']} after the load dropped" if x["rec"] is not None else "not normal again within 15 s")
      + f": **{P(c['recovered <= 5 s'])}**.")
text = "\n".join(md) + "\n"
print(text)
for x in rows:
    print(f"run {x['r']}: " + "  ".join(f"{k}: {P(v)}" for k, v in x["c"].items()))
if out:
    doc = open(out).read()
    a, b = "<!-- overload.sh start -->", "<!-- overload.sh end -->"
    if a in doc and b in doc:
        doc = doc[:doc.index(a) + len(a)] + "\n" + text + doc[doc.index(b):]
    else:
        doc = doc.rstrip("\n") + f"\n\n## Overload (loadtest/overload.sh)\n\n{a}\n{text}{b}\n"
    open(out, "w").write(doc)
sys.exit(0 if ok_all else 1)
PY
