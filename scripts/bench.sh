#!/usr/bin/env bash
# Benchmarks a release build of Ember on one store: time to ready, idle RSS, then
# `ember bench` (CRUD phases plus the HTTP and storage ceilings, peak RSS).
#
#   scripts/bench.sh postgres [connections] [seconds]
#   scripts/bench.sh sqlite   [connections] [seconds]
#
# PostgreSQL: uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a
# fresh database `ember_bench`. Results go to target/bench/<store>.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

store=${1:?usage: scripts/bench.sh postgres|sqlite [connections] [seconds]}
connections=${2:-32}
seconds=${3:-10}
port=18099
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
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
  kill -0 $pid 2>/dev/null || { echo "ember exited; see $out/$store-server.log" >&2; exit 1; }
  sleep 0.002
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
sleep 1
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "store=$store ready_ms=$ready_ms idle_rss_mib=$((idle_kib / 1024))" | tee "$out/$store-startup.txt"

"$bin" bench --url "http://127.0.0.1:$port/fhir" --connections "$connections" --duration "$seconds" \
  --db "$url" --pid "$pid" --json "$out/$store.json" | tee "$out/$store.txt"
