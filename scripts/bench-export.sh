#!/usr/bin/env bash
# Bulk Data export end to end, on a release build on PostgreSQL: `ember dataset` loads a
# population into a fresh database, the server is restarted (so its peak RSS is the
# export's), then `ember export` kicks off a system `$export`, polls it and downloads
# every file. Prints the resources exported (lines of the NDJSON files), the time from
# kick-off to the last file on disk, the rate, and the exporting server's peak RSS.
#
#   scripts/bench-export.sh [patients] [years]
#   scripts/bench-export.sh 600 1        # about 1,040,000 resources
#
# Uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a database
# `ember_bench_export`, dropped at the end. Output in target/bench/export.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

patients=${1:-600}
years=${2:-1}
port=18096
out=target/bench
mkdir -p "$out"
txt="$out/export.txt"

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
url="$pg/ember_bench_export"
work=$(mktemp -d)
pid=
stop() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
cleanup() {
  stop
  rm -rf "$work"
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ember_bench_export" >/dev/null 2>&1 || true
}
trap cleanup EXIT

serve() {
  # Ember refuses unknown EMBER_* variables: the script's own stay out of its environment.
  env -u EMBER_BENCH_PG EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn \
    "$bin" serve >"$out/export-server.log" 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/export-server.log" >&2; exit 1; }
    sleep 0.05
  done
}

PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ember_bench_export" -c "CREATE DATABASE ember_bench_export"
"$bin" migrate --database-url "$url" >/dev/null
serve
fhir="http://127.0.0.1:$port/fhir"
echo "ember dataset --patients $patients --years $years (postgres):" | tee "$txt"
"$bin" dataset --url "$fhir" --patients "$patients" --years "$years" | tail -4 | tee -a "$txt"
stop
psql "$url" -qc "VACUUM ANALYZE"

serve
idle_kib=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
echo "ember export (system level), server restarted: idle RSS $((idle_kib / 1024)) MiB" | tee -a "$txt"
start=$(date +%s.%N)
"$bin" export --url "$fhir" --out "$work/files" 2>&1 | tail -6 | tee -a "$txt"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
resources=$(cat "$work"/files/*.ndjson | wc -l)
{
  echo "resources exported   $resources"
  printf 'end to end           %.2f s\n' "$elapsed"
  printf 'resources/s          %.0f\n' "$(echo "$resources / $elapsed" | bc -l)"
  echo "server peak RSS      $((peak_kib / 1024)) MiB"
} | tee -a "$txt"
