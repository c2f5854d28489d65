#!/usr/bin/env bash
# Measures the CPU and memory of one Ember instance (release build, PostgreSQL) at
# idle and at three load levels of `ember bench` (create + read, 2, 8 and 32
# connections), for docs/operations.md. Prints a Markdown table.
#
#   scripts/resource-use.sh [seconds-per-level]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-10}
port=18097
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
out=target/bench
mkdir -p "$out"
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember
psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS ember_resources' -c 'CREATE DATABASE ember_resources' >/dev/null
url="$pg/ember_resources"
EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn "$bin" serve >"$out/resources-server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.05; done

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)

echo "| load | requests/s (create + read) | CPU (% of one core) | RSS (MiB) |"
echo "| --- | --- | --- | --- |"
sleep 2
t0=$(ticks); sleep "$seconds"; t1=$(ticks)
echo "| idle | 0 | $(( (t1 - t0) * 100 / hz / seconds )) | $(rss_mib) |"

for c in 2 8 32; do
  "$bin" bench --url "http://127.0.0.1:$port/fhir" --connections "$c" --duration "$seconds" --warmup 1 \
    --ops create,read --no-http-baseline --json "$out/resources-$c.json" >/dev/null 2>&1 &
  bench=$!
  # Sample the measured part of the two phases (after setup and warm-up).
  sleep 2
  t0=$(ticks); peak=0
  for _ in $(seq "$((2 * seconds - 2))"); do
    sleep 1
    r=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"); [ "$r" -gt "$peak" ] && peak=$r
  done
  t1=$(ticks)
  wait $bench
  rps=$(python3 -c "import json,sys; d=json.load(open('$out/resources-$c.json')); print(round(sum(p['requests_per_sec'] for p in d['phases']) / len(d['phases'])))")
  echo "| $c connections | $rps | $(( (t1 - t0) * 100 / hz / (2 * seconds - 2) )) | $(awk -v k="$peak" 'BEGIN {printf "%.1f", k / 1024}') |"
done
