#!/usr/bin/env bash
# Benchmarks the delivery latency of Ember's rest-hook Subscriptions on a release build,
# on PostgreSQL: a fresh database, `ember serve` on a loopback address, then
# `ember bench-subscriptions`, which runs a receiver of its own, stores SUBSCRIPTIONS
# active rest-hook Subscriptions (one patient each, full JSON payload) and creates
# RATE matching Observations a second for SECONDS. It reports the p50/p95/p99 from each
# write's request to its notification's arrival against the target (p99 < 1 s, nothing
# missing), then stops the server and drops the database.
#
#   scripts/bench-subscriptions.sh [SUBSCRIPTIONS] [RATE] [SECONDS] [CONNECTIONS]
#   scripts/bench-subscriptions.sh              # 100 subscriptions, 500 writes/s, 30 s, 32 connections
#   scripts/bench-subscriptions.sh 10 100 5     # a quick run
#
# Environment (the script's own, kept out of Ember's):
#   EMBER_BENCH_PG     PostgreSQL server URL (default postgres://postgres@127.0.0.1:5432);
#                      the database is `ember_bench_subscriptions`
#   EMBER_BENCH_PORT   the port Ember listens on at 127.0.0.1 (default 18095)
#   EMBER_BENCH_STORE=sqlite   measure on a SQLite file instead
# Other EMBER_* settings (EMBER_JOB_CONCURRENCY, …) are passed to Ember.
# Output goes to target/bench/subscriptions.{txt,json} and subscriptions-server.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage="usage: scripts/bench-subscriptions.sh [SUBSCRIPTIONS] [RATE] [SECONDS] [CONNECTIONS]"
subs=${1:-100}
rate=${2:-500}
seconds=${3:-30}
connections=${4:-32}
for n in "$subs" "$rate" "$seconds" "$connections"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "not a number: $n; $usage" >&2; exit 2; }
done
port=${EMBER_BENCH_PORT:-18095}
store=${EMBER_BENCH_STORE:-postgres}
out=target/bench
mkdir -p "$out"
txt="$out/subscriptions.txt"

cargo build --release --quiet -p ember
bin=${CARGO_TARGET_DIR:-target}/release/ember
# Ember refuses unknown EMBER_* variables: the script's own stay out of its environment.
ember=(env -u EMBER_BENCH_PG -u EMBER_BENCH_PORT -u EMBER_BENCH_STORE)

pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db=ember_bench_subscriptions
case $store in
  postgres)
    url="$pg/$db"
    PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" \
      -c "CREATE DATABASE $db"
    ;;
  sqlite)
    dir=$(mktemp -d)
    url="sqlite://$dir/ember.db"
    ;;
  *) echo "EMBER_BENCH_STORE must be postgres or sqlite" >&2; exit 2 ;;
esac
"${ember[@]}" "$bin" migrate --database-url "$url" >/dev/null

pid=
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  case $store in
    postgres) psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true ;;
    sqlite) rm -rf "$dir" ;;
  esac
}
trap cleanup EXIT

"${ember[@]}" EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn \
  "$bin" serve >"$out/subscriptions-server.log" 2>&1 &
pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
  kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/subscriptions-server.log" >&2; exit 1; }
  sleep 0.01
done

{
  dirty=$([[ -z $(git status --porcelain 2>/dev/null) ]] || echo ' (dirty tree)')
  echo "subscriptions: commit $(git rev-parse --short HEAD)$dirty, store=$store" \
    "subscriptions=$subs rate=$rate seconds=$seconds connections=$connections" \
    "EMBER_JOB_CONCURRENCY=${EMBER_JOB_CONCURRENCY:-default}"
} | tee "$txt"
"${ember[@]}" "$bin" bench-subscriptions --url "http://127.0.0.1:$port/fhir" \
  --subscriptions "$subs" --rate "$rate" --seconds "$seconds" --connections "$connections" \
  --json "$out/subscriptions.json" 2>&1 | tee -a "$txt"
