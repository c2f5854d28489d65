#!/usr/bin/env bash
# Benchmarks a release build of Ember on one store: time to ready, idle RSS, then
# `ember bench` (CRUD phases plus the HTTP and storage ceilings, peak RSS).
#
#   scripts/bench.sh postgres [connections] [seconds]
#   scripts/bench.sh sqlite   [connections] [seconds]
#
# PostgreSQL: uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a
# fresh database `ember_bench`. Results go to target/bench/<store>.json. Then a second
# instance starts on the same database and `ember bench --ops queue` measures the job
# queue run by both instances (target/bench/postgres-queue.{txt,json}); then
# `ember bench --ops create,submit` posts measurements to $submit-measurement on the
# first instance while both triage them (submissions/s against creates/s, triage lag,
# backlog drain: target/bench/postgres-submit.{txt,json}). SQLite skips both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

store=${1:?usage: scripts/bench.sh postgres|sqlite [connections] [seconds]}
connections=${2:-32}
seconds=${3:-10}
port=18099
port2=18100
queue_instances=2
out=target/bench
mkdir -p "$out"

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember

case "$store" in
  postgres)
    pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
    psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS ember_bench' -c 'CREATE DATABASE ember_bench'
    url="$pg/ember_bench"
    # Migrate once, so the timed start below is on an already-migrated database.
    "$bin" migrate --database-url "$url" >/dev/null
    ;;
  sqlite)
    dir=$(mktemp -d)
    url="sqlite://$dir/ember.db"
    "$bin" migrate --database-url "$url" >/dev/null
    ;;
  *) echo "unknown store $store" >&2; exit 2 ;;
esac

start_ns=$(date +%s%N)
EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn "$bin" serve >"$out/$store-server.log" 2>&1 &
pid=$!
pid2=
stop_servers() {
  for p in $pid $pid2; do kill "$p" 2>/dev/null || true; done
  for p in $pid $pid2; do wait "$p" 2>/dev/null || true; done
}
trap stop_servers EXIT
# wait_ready PORT PID LOG
wait_ready() {
  until curl -fs -o /dev/null "http://127.0.0.1:$1/readyz"; do
    kill -0 "$2" 2>/dev/null || { echo "ember exited; see $3" >&2; exit 1; }
    sleep 0.002
  done
}
wait_ready $port $pid "$out/$store-server.log"
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
sleep 1
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "store=$store ready_ms=$ready_ms idle_rss_mib=$((idle_kib / 1024))" | tee "$out/$store-startup.txt"

"$bin" bench --url "http://127.0.0.1:$port/fhir" --connections "$connections" --duration "$seconds" \
  --db "$url" --pid "$pid" --json "$out/$store.json" | tee "$out/$store.txt"

[ "$store" = postgres ] || exit 0

# Queue: a second instance on the same database (started only now, so the numbers above
# are of one instance as before); both run the noop jobs `ember bench` enqueues.
EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$port2 EMBER_LOG=warn "$bin" serve >"$out/$store-server2.log" 2>&1 &
pid2=$!
wait_ready $port2 $pid2 "$out/$store-server2.log"
echo "queue: $queue_instances ember instances on $url (pids $pid $pid2, ports $port $port2," \
  "EMBER_JOB_CONCURRENCY=${EMBER_JOB_CONCURRENCY:-8} each)" | tee "$out/$store-queue.txt"
"$bin" bench --url "http://127.0.0.1:$port/fhir" --ops queue --no-http-baseline \
  --duration "$seconds" --db "$url" --json "$out/$store-queue.json" | tee -a "$out/$store-queue.txt"

# Submit: measurements posted to the first instance's $submit-measurement while both
# instances triage them; a create phase runs first in the same invocation, so the
# report gives submissions/s as a share of creates/s measured on the same machine.
echo "submit: $queue_instances ember instances on $url (pids $pid $pid2), posting to port $port" \
  | tee "$out/$store-submit.txt"
"$bin" bench --url "http://127.0.0.1:$port/fhir" --ops create,submit --no-http-baseline \
  --connections "$connections" --duration "$seconds" --pid "$pid" \
  --json "$out/$store-submit.json" | tee -a "$out/$store-submit.txt"
