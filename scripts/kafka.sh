#!/usr/bin/env bash
# Single-node Apache Kafka 3.9.1 (KRaft, no ZooKeeper) harness for mmrec's
# integration tests, CI and the demo. Needs only java (17+), mvn and python3.
#
#   kafka.sh fetch                         download broker jars (once) into the cache
#   kafka.sh start DIR                     start a fresh broker in DIR (wipes DIR/data),
#                                          print "127.0.0.1:PORT" (also in DIR/bootstrap)
#   kafka.sh topics DIR name:parts ...     create topics (idempotent)
#   kafka.sh stop DIR                      stop the broker started in DIR (DIR/data is kept)
#   kafka.sh restart DIR                   start the stopped broker of DIR again: same ports,
#                                          same data (fault tests: broker outage)
#   kafka.sh run DIR -- CMD ARGS...        start + default topics + CMD + always stop;
#                                          CMD sees MMREC_KAFKA_BOOTSTRAP, MMREC_KAFKA_DIR and
#                                          MMREC_KAFKA_SH (this script); exit code is CMD's
#   kafka.sh tool DIR CLASS ARGS...        run a Kafka CLI class (e.g. console consumer)
#
# Jar cache: ${MMREC_KAFKA_CACHE:-$HOME/.cache/mmrec/kafka-3.9.1} (outside the tree).
set -euo pipefail

KAFKA_VERSION=3.9.1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$HERE/kafka/pom.xml
CACHE=${MMREC_KAFKA_CACHE:-$HOME/.cache/mmrec/kafka-$KAFKA_VERSION}
LIB=$CACHE/lib
DEFAULT_TOPICS=(mmrec.events:4 mmrec.items:2 mmrec.impressions:2 mmrec.events.dlq:1)
START_TIMEOUT=${MMREC_KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=20
# Small, quick-starting JVMs (2-core CI boxes).
JVM_FAST=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -Djava.awt.headless=true)

die() { echo "kafka.sh: error: $*" >&2; exit 1; }
note() { echo "kafka.sh: $*" >&2; }

# fetch: idempotent; the marker holds the pom's hash so a pom change refetches.
cmd_fetch() {
  local want; want=$(sha256sum "$POM" | cut -d' ' -f1)
  [[ -f $CACHE/.fetched && $(cat "$CACHE/.fetched") == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (needed once to download Kafka jars)"
  mkdir -p "$CACHE"
  (
    flock 9   # parallel tests may all try to fetch at once
    [[ -f $CACHE/.fetched && $(cat "$CACHE/.fetched") == "$want" ]] && exit 0
    note "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB ..."
    rm -rf "$LIB.tmp" "$LIB"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
         -DoutputDirectory="$LIB.tmp" >"$CACHE/fetch.log" 2>&1; then
      tail -n 30 "$CACHE/fetch.log" >&2
      die "mvn could not download the Kafka jars (network/proxy? ~/.m2/settings.xml?); full log: $CACHE/fetch.log"
    fi
    ls "$LIB.tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka jar missing after mvn; see $CACHE/fetch.log"
    mv "$LIB.tmp" "$LIB"
    echo "$want" >"$CACHE/.fetched"
  ) 9>"$CACHE/.lock"
}

# JVM_BROKER: the broker's java arguments for DIR (the caller declares it local).
broker_cmd() {
  JVM_BROKER=(-Xms128m -Xmx512m "${JVM_FAST[@]}" -Dlog4j.configuration="file:$1/log4j.properties"
              -cp "$LIB/*" kafka.Kafka "$1/server.properties")
}

# Two distinct free ports on 127.0.0.1 (both held open while choosing).
free_ports() {
  python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))'
}

# Kafka-style cluster id: url-safe base64 of 16 random bytes, not starting with "-".
cluster_id() {
  python3 -c 'import base64,os
while True:
    i = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not i.startswith("-"): print(i); break'
}

# java with the Kafka classpath; CLI tools log WARN+ to stderr only.
kjava() {
  java -Xmx256m "${JVM_FAST[@]}" -Dlog4j.configuration="file:$CACHE/tools-log4j.properties" \
       -cp "$LIB/*" "$@"
}
write_tools_log4j() {
  [[ -f $CACHE/tools-log4j.properties ]] && return 0
  cat >"$CACHE/tools-log4j.properties.$$" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  mv -f "$CACHE/tools-log4j.properties.$$" "$CACHE/tools-log4j.properties"   # atomic
}

# Is the broker recorded in DIR/kafka.pid alive? (zombies and reused pids don't count)
broker_pid() {
  local dir=$1 pid
  [[ -f $dir/kafka.pid ]] || return 1
  pid=$(cat "$dir/kafka.pid")
  [[ -r /proc/$pid/stat && $(awk '{print $3}' "/proc/$pid/stat") != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  [[ $# -eq 1 ]] || die "usage: kafka.sh start DIR"
  local dir
  mkdir -p "$1"; dir=$(cd "$1" && pwd)
  if broker_pid "$dir" >/dev/null; then die "a broker is already running in $dir"; fi
  cmd_fetch
  write_tools_log4j
  local ports bport cport JVM_BROKER
  broker_cmd "$dir"
  ports=$(free_ports); bport=${ports% *}; cport=${ports#* }

  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh: throwaway single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
EOF
  cat >"$dir/log4j.properties" <<'EOF'
# Broker logging: everything goes to stdout, which kafka.sh redirects to DIR/kafka.log.
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF

  rm -rf "$dir/data"   # every start is a fresh, empty cluster
  kjava kafka.tools.StorageTool format -t "$(cluster_id)" -c "$dir/server.properties" \
    >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; die "storage format failed"; }

  rm -f "$dir/bootstrap"
  # Under `run`, the broker gets SIGTERM if the wrapper itself is killed (even by SIGKILL).
  local pdeath=()
  [[ ${KAFKA_SH_PDEATHSIG:-} == 1 ]] && command -v setpriv >/dev/null && pdeath=(setpriv --pdeathsig TERM)
  "${pdeath[@]}" java "${JVM_BROKER[@]}" >"$dir/kafka.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
  wait_ready "$dir" "$bport"
}

# Waits until the broker of DIR listens on PORT and says it started, then prints the address.
wait_ready() {
  local dir=$1 bport=$2 deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$bport" && grep -q "Kafka Server started" "$dir/kafka.log"; do
    if ! broker_pid "$dir" >/dev/null; then
      tail -n 40 "$dir/kafka.log" >&2; die "broker exited during startup (log: $dir/kafka.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$dir/kafka.log" >&2; cmd_stop "$dir"
      die "broker not ready after ${START_TIMEOUT}s (log: $dir/kafka.log)"
    fi
    sleep 0.2
  done
  echo "127.0.0.1:$bport" >"$dir/bootstrap"
  echo "127.0.0.1:$bport"
}

# restart: the broker of DIR (stopped with `stop`) starts again on the ports and data of its
# last start. Under `run` (DIR/run.pid names the wrapper) the cleanup guarantee is kept: a
# watcher subshell is the broker's parent (pdeathsig TERM if the watcher dies) and stops it
# within a second of the wrapper's death, even by SIGKILL; the wrapper's EXIT trap stops it
# as before. Outside `run`, stop it with `stop`.
cmd_restart() {
  [[ $# -eq 1 ]] || die "usage: kafka.sh restart DIR"
  [[ -f $1/server.properties && -d $1/data ]] || die "no stopped broker in $1 (start it first)"
  local dir bport runpid="" JVM_BROKER; dir=$(cd "$1" && pwd)
  if broker_pid "$dir" >/dev/null; then die "the broker in $dir is still running"; fi
  bport=$(sed -n 's/^listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$dir/server.properties")
  [[ -n $bport ]] || die "no PLAINTEXT listener in $dir/server.properties"
  broker_cmd "$dir"
  rm -f "$dir/bootstrap" "$dir/kafka.pid"   # a stale pid (broker died unstopped) is not ours
  mv -f "$dir/kafka.log" "$dir/kafka.log.prev" 2>/dev/null || true   # wait_ready reads a fresh log
  [[ -f $dir/run.pid ]] && runpid=$(cat "$dir/run.pid")
  if [[ -n $runpid ]] && kill -0 "$runpid" 2>/dev/null && command -v setpriv >/dev/null; then
    (
      setpriv --pdeathsig TERM java "${JVM_BROKER[@]}" >"$dir/kafka.log" 2>&1 </dev/null &
      bpid=$!
      echo "$bpid" >"$dir/kafka.pid"
      while kill -0 "$runpid" 2>/dev/null && broker_pid "$dir" >/dev/null; do sleep 1; done
      kill -TERM "$bpid" 2>/dev/null || true
      wait "$bpid" || true
    ) </dev/null >/dev/null 2>&1 &
    local deadline=$((SECONDS + 10))   # the watcher writes kafka.pid
    until [[ -f $dir/kafka.pid ]] || ((SECONDS >= deadline)); do sleep 0.05; done
  else
    java "${JVM_BROKER[@]}" >"$dir/kafka.log" 2>&1 </dev/null &
    echo $! >"$dir/kafka.pid"
  fi
  wait_ready "$dir" "$bport"
}

cmd_topics() {
  [[ $# -ge 2 ]] || die "usage: kafka.sh topics DIR name:partitions [...]"
  local dir=$1; shift
  [[ -f $dir/bootstrap ]] || die "no running broker in $dir (missing $dir/bootstrap)"
  cmd_fetch; write_tools_log4j
  local bs spec i specs=("$@") pids=() failed=0; bs=$(cat "$dir/bootstrap")
  for spec in "$@"; do
    [[ $spec =~ ^([A-Za-z0-9._-]+):([0-9]+)$ ]] || die "bad topic spec '$spec' (want name:partitions)"
  done
  # One JVM per topic (TopicCommand creates one at a time), run in parallel.
  for spec in "$@"; do
    kjava org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --if-not-exists \
      --topic "${spec%:*}" --partitions "${spec##*:}" --replication-factor 1 >/dev/null &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { note "could not create topic ${specs[$i]}"; failed=1; }
  done
  ((failed == 0)) || die "topic creation failed"
}

cmd_stop() {
  [[ $# -eq 1 ]] || die "usage: kafka.sh stop DIR"
  [[ -d $1 ]] || return 0
  local dir pid; dir=$(cd "$1" && pwd)
  if pid=$(broker_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while broker_pid "$dir" >/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if broker_pid "$dir" >/dev/null; then
      note "broker $pid did not stop in ${STOP_TIMEOUT}s, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/kafka.pid" "$dir/bootstrap"
}

cmd_tool() {
  [[ $# -ge 2 ]] || die "usage: kafka.sh tool DIR CLASS ARGS..."
  shift; cmd_fetch; write_tools_log4j; kjava "$@"
}

cmd_run() {
  [[ $# -ge 3 && $2 == -- ]] || die "usage: kafka.sh run DIR -- CMD ARGS..."
  local dir=$1; shift 2
  mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
  if broker_pid "$dir" >/dev/null; then die "a broker is already running in $dir"; fi
  # Always stop the broker, whatever happens to us or to CMD.
  trap "cmd_stop $(printf %q "$dir"); rm -f $(printf %q "$dir/run.pid")" EXIT   # expand now: dir is a local
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo $$ >"$dir/run.pid"   # lets `restart` tie a restarted broker to this wrapper's life
  KAFKA_SH_PDEATHSIG=1 cmd_start "$dir" >/dev/null   # not in $(...): broker stays our child
  cmd_topics "$dir" "${DEFAULT_TOPICS[@]}"
  note "broker at $(cat "$dir/bootstrap") (log: $dir/kafka.log)"
  local rc=0
  MMREC_KAFKA_BOOTSTRAP=$(cat "$dir/bootstrap") MMREC_KAFKA_DIR=$dir MMREC_KAFKA_SH=$HERE/kafka.sh "$@" || rc=$?
  return "$rc"
}

sub=${1:-}; [[ $# -gt 0 ]] && shift
case $sub in
  fetch)  cmd_fetch "$@" ;;
  start)  cmd_start "$@" ;;
  topics) cmd_topics "$@" ;;
  stop)   cmd_stop "$@" ;;
  restart) cmd_restart "$@" ;;
  run)    cmd_run "$@" ;;
  tool)   cmd_tool "$@" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
