#!/usr/bin/env bash
# Ingest: the population `ember dataset` generates, written to NDJSON files and loaded
# with `ember import` (batch Bundles of PUTs) into a fresh database, then loaded
# directly by `ember dataset` (transaction Bundles) into another fresh database, on a
# release build of `ember serve`. Prints both reports; the rates are resources/s.
#
#   scripts/bench-ingest.sh postgres|sqlite [patients] [days] [concurrency]
#
# PostgreSQL: $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432), databases
# `ember_ingest_import` and `ember_ingest_dataset`. Output in target/bench/ingest-*.txt.
# EMBER_BENCH_BIN=path measures that binary instead of building the checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

store=${1:?usage: scripts/bench-ingest.sh postgres|sqlite [patients] [days] [concurrency]}
patients=${2:-1000}
days=${3:-90}
concurrency=${4:-8}
port=18097
out=target/bench
mkdir -p "$out"

if [[ -n ${EMBER_BENCH_BIN:-} ]]; then
  bin=$EMBER_BENCH_BIN
  # Ember refuses unknown EMBER_* variables.
  unset EMBER_BENCH_BIN
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-target}/release/ember
fi
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# fresh_db NAME: prints the URL of an empty, migrated database.
fresh_db() {
  case "$store" in
    postgres)
      local pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
      psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
      echo "$pg/$1" ;;
    sqlite) echo "sqlite://$work/$1.db" ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
  esac
}

# serve URL: starts ember on it and waits until it is ready.
serve() {
  "$bin" migrate --database-url "$1" >/dev/null
  EMBER_DATABASE_URL=$1 EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn "$bin" serve \
    >"$out/ingest-server.log" 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/ingest-server.log" >&2; exit 1; }
    sleep 0.05
  done
}

stop() {
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

population=(--patients "$patients" --days "$days")
"$bin" dataset --out "$work/files" "${population[@]}" | tail -3

serve "$(fresh_db ember_ingest_import)"
echo "ember import, $concurrency requests in flight ($store):" | tee "$out/ingest-import-$store.txt"
(cd "$work" && "$bin" import --url "http://127.0.0.1:$port/fhir" --concurrency "$concurrency" files) \
  2>/dev/null | tee -a "$out/ingest-import-$store.txt"
stop

serve "$(fresh_db ember_ingest_dataset)"
echo "ember dataset, $concurrency connections ($store):" | tee "$out/ingest-dataset-$store.txt"
"$bin" dataset --url "http://127.0.0.1:$port/fhir" --connections "$concurrency" "${population[@]}" \
  | tee -a "$out/ingest-dataset-$store.txt"
stop
