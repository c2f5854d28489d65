#!/usr/bin/env bash
# Bulk Data export end to end, on a release build: `ember dataset` loads a population
# into a fresh database, the server is restarted (so its peak RSS is the export's), then
# `ember export` kicks off a system `$export`, polls it and downloads every file. Prints
# the resources exported (lines of the NDJSON files), the time from kick-off to the last
# file on disk, the rate, and the exporting server's peak RSS.
#
#   scripts/bench-export.sh [patients] [years]
#   scripts/bench-export.sh 600 1        # about 1,080,000 resources
#
# EMBER_BENCH_STORE is the store: postgres (default) or sqlite.
# PostgreSQL: uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a
# database `ember_bench_export`. SQLite: target/bench/export-sqlite/ember.db.
# The database is removed at the end unless EMBER_BENCH_KEEP_DB=1. EMBER_BENCH_REUSE_DB=1
# skips the load and exports the database kept by an earlier run (its earlier exports'
# files removed first), to compare builds on the same data; patients and years are then
# only printed. EMBER_BENCH_BIN runs that ember binary instead of building one.
# Output in target/bench/export-<store>.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

patients=${1:-600}
years=${2:-1}
store=${EMBER_BENCH_STORE:-postgres}
keep=${EMBER_BENCH_KEEP_DB:-0}
reuse=${EMBER_BENCH_REUSE_DB:-0}
[[ $reuse == 1 ]] && keep=1
port=18096
out=target/bench
mkdir -p "$out"
txt="$out/export-$store.txt"

if [[ -n ${EMBER_BENCH_BIN:-} ]]; then
  bin=$EMBER_BENCH_BIN
else
  cargo build --release --quiet -p ember
  bin=${CARGO_TARGET_DIR:-target}/release/ember
fi
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db=ember_bench_export
sqlite_dir=$out/export-sqlite
case "$store" in
  postgres) url="$pg/$db" ;;
  sqlite) url="sqlite://$sqlite_dir/ember.db" ;;
  *) echo "EMBER_BENCH_STORE must be postgres or sqlite, not $store" >&2; exit 2 ;;
esac
# Ember refuses unknown EMBER_* variables: the script's own stay out of its environment.
ember=(env -u EMBER_BENCH_PG -u EMBER_BENCH_STORE -u EMBER_BENCH_KEEP_DB -u EMBER_BENCH_REUSE_DB
  -u EMBER_BENCH_BIN "$bin")
work=$(mktemp -d)
pid=
stop() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
drop() {
  case "$store" in
    postgres) psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true ;;
    sqlite) rm -rf "$sqlite_dir" ;;
  esac
}
cleanup() {
  stop
  rm -rf "$work"
  if [[ $keep == 1 ]]; then
    echo "kept the database: $url"
  else
    drop
  fi
}
trap cleanup EXIT

# Runs SQL on the benchmark database.
sql() {
  case "$store" in
    postgres) psql "$url" -qc "$1" >/dev/null ;;
    sqlite) sqlite3 "$sqlite_dir/ember.db" "$1" >/dev/null ;;
  esac
}

serve() {
  EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn \
    "${ember[@]}" serve >"$out/export-$store-server.log" 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/export-$store-server.log" >&2; exit 1; }
    sleep 0.05
  done
}

fhir="http://127.0.0.1:$port/fhir"
if [[ $reuse == 1 ]]; then
  echo "reusing the database $url ($patients patients x $years years): no load" | tee "$txt"
  # The files of earlier exports go, so every run writes into the same table.
  sql "DELETE FROM kv WHERE namespace = 'ember.export'"
  [[ $store == postgres ]] && psql "$url" -qc "VACUUM kv" >/dev/null
else
  drop
  case "$store" in
    postgres) PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "CREATE DATABASE $db" ;;
    sqlite) mkdir -p "$sqlite_dir" ;;
  esac
  "${ember[@]}" migrate --database-url "$url" >/dev/null
  serve
  echo "ember dataset --patients $patients --years $years ($store):" | tee "$txt"
  "${ember[@]}" dataset --url "$fhir" --patients "$patients" --years "$years" | tail -4 | tee -a "$txt"
  stop
  case "$store" in
    postgres) psql "$url" -qc "VACUUM ANALYZE" ;;
    sqlite) sqlite3 "$sqlite_dir/ember.db" "PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;" >/dev/null ;;
  esac
fi

serve
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "ember export (system level, $store), server restarted: idle RSS $((idle_kib / 1024)) MiB" | tee -a "$txt"
start=$(date +%s.%N)
"${ember[@]}" export --url "$fhir" --out "$work/files" 2>&1 | tail -6 | tee -a "$txt"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
# utime + stime of the server (fields 14 and 15 of /proc/PID/stat, after the command).
cpu_ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
resources=$(cat "$work"/files/*.ndjson | wc -l)
{
  echo "resources exported   $resources"
  printf 'end to end           %.2f s\n' "$elapsed"
  printf 'resources/s          %.0f\n' "$(echo "$resources / $elapsed" | bc -l)"
  printf 'server CPU           %.2f s\n' "$(echo "$cpu_ticks / $(getconf CLK_TCK)" | bc -l)"
  echo "server peak RSS      $((peak_kib / 1024)) MiB"
} | tee -a "$txt"
