#!/usr/bin/env bash
# Benchmarks FHIR search on a release build of Ember, on a fresh database of one store:
# loads `ember dataset` (reports its ingest rate), runs `ember bench-search` (latency per
# query kind against its target, every answer checked), then reports the size of the
# search index per resource, and stops everything.
#
#   scripts/bench-search.sh postgres|sqlite PATIENTS PERIOD CONNECTIONS SECONDS
#   scripts/bench-search.sh sqlite 50 1 4 5
#   scripts/bench-search.sh postgres 10000 38d 16 10
#
#   scripts/bench-search.sh postgres 200 5 16 10
#
# PERIOD is the history per patient: whole years (`5`, passed as --years) or days
# (`100d`, passed as --days). A patient has about 4.3 home readings a day (blood pressure
# morning and evening, SpO2 and pulse daily, weight and glucose weekly) and a lab panel
# every 4 weeks: 200 patients x 5 years are 1,623,105 Observations, 10,000 x 38d are
# 1,690,678; the deep patients add their own (71,000 by default).
#
# EMBER_BENCH_DEEP is the deep patients' Observation counts, passed as --deep to both
# commands (default 1000,4000,16000,50000; `none` for none). The heavy-*, depth and
# everything queries run against them. EMBER_BENCH_QUERIES (comma-separated kinds, e.g.
# `everything`) runs only those kinds instead of all.
#
# PostgreSQL: uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a
# fresh database `ember_bench_search`, dropped at the end unless EMBER_BENCH_KEEP_DB=1.
# EMBER_BENCH_REUSE_DB=1 (PostgreSQL) skips the load and measures the database kept by an
# earlier run with the same PATIENTS, PERIOD and EMBER_BENCH_DEEP, to compare builds on
# the same data.
# SQLite: a temporary directory, removed at the end unless EMBER_BENCH_KEEP_DB=1.
# Output goes to target/bench/search-<store>.{txt,json} and search-<store>-*.log.
# Exits non-zero when the load or any search answer failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage="usage: [EMBER_BENCH_DEEP=1000,4000,...|none] [EMBER_BENCH_QUERIES=kind,...] scripts/bench-search.sh postgres|sqlite PATIENTS YEARS|DAYSd CONNECTIONS SECONDS"
store=${1:?$usage}
patients=${2:?$usage}
period=${3:?$usage}
if [[ $period =~ ^([0-9]+)d$ ]]; then
  period_args=(--days "${BASH_REMATCH[1]}")
elif [[ $period =~ ^[0-9]+$ ]]; then
  period_args=(--years "$period")
else
  echo "bad period $period (years like 1, or days like 100d); $usage" >&2
  exit 2
fi
connections=${4:?$usage}
seconds=${5:?$usage}
port=${EMBER_BENCH_PORT:-18098}
keep=${EMBER_BENCH_KEEP_DB:-0}
reuse=${EMBER_BENCH_REUSE_DB:-0}
deep=${EMBER_BENCH_DEEP-1000,4000,16000,50000}
query_args=()
[[ -n ${EMBER_BENCH_QUERIES:-} ]] && query_args=(--queries "$EMBER_BENCH_QUERIES")
out=target/bench
mkdir -p "$out"
txt="$out/search-$store.txt"

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember
# Ember refuses unknown EMBER_* variables; this script's own settings stay out of its
# environment.
# (An array, not a function: `$!` of a backgrounded command must be Ember's pid.)
ember=(env -u EMBER_BENCH_KEEP_DB -u EMBER_BENCH_REUSE_DB -u EMBER_BENCH_PG -u EMBER_BENCH_PORT
  -u EMBER_BENCH_DEEP -u EMBER_BENCH_QUERIES)

pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db=ember_bench_search
dir=
case "$store" in
  postgres)
    if [[ $reuse == 1 ]]; then
      keep=1
    else
      PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    fi
    url="$pg/$db"
    ;;
  sqlite)
    [[ $reuse == 1 ]] && { echo "EMBER_BENCH_REUSE_DB is for postgres" >&2; exit 2; }
    dir=$(mktemp -d)
    url="sqlite://$dir/ember.db"
    ;;
  *) echo "unknown store $store; $usage" >&2; exit 2 ;;
esac
"${ember[@]}" "$bin" migrate --database-url "$url" >/dev/null

pid=
stop_server() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
cleanup() {
  stop_server
  if [[ $keep != 1 ]]; then
    case "$store" in
      postgres) psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true ;;
      sqlite) [[ -n $dir ]] && rm -rf "$dir" ;;
    esac
  else
    echo "kept the database: $url"
  fi
}
trap cleanup EXIT

"${ember[@]}" EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn \
  "$bin" serve >"$out/search-$store-server.log" 2>&1 &
pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
  kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/search-$store-server.log" >&2; exit 1; }
  sleep 0.01
done
fhir="http://127.0.0.1:$port/fhir"

{
  echo "store=$store patients=$patients period=$period (${period_args[*]}) deep=${deep:-none} connections=$connections seconds=$seconds"
  echo
  echo "== ember dataset"
} | tee "$txt"
status=0
if [[ $reuse == 1 ]]; then
  echo "reusing the loaded database $url: no load, no ingest rate" | tee -a "$txt"
else
  "${ember[@]}" "$bin" dataset --url "$fhir" --patients "$patients" "${period_args[@]}" \
    --deep "$deep" 2>&1 \
    | tee "$out/search-$store-dataset.log" | tee -a "$txt" || status=$?
  if [[ $status != 0 ]]; then
    echo "ember dataset failed (exit $status); see $out/search-$store-dataset.log" | tee -a "$txt" >&2
    exit "$status"
  fi
  rate=$(awk '/^resources\/s/ {print $2}' "$out/search-$store-dataset.log")
  echo "ingest rate: ${rate:-?} resources/s" | tee -a "$txt"

  if [[ $store == postgres ]]; then
    # What autovacuum does soon after a bulk load: planner statistics and the
    # visibility map (index-only scans), timed so the report shows its cost.
    start=$(date +%s.%N)
    psql "$url" -qc "VACUUM ANALYZE"
    echo "vacuum analyze after the load: $(echo "$(date +%s.%N) - $start" | bc) s" | tee -a "$txt"
  fi
fi

echo -e "\n== ember bench-search" | tee -a "$txt"
"${ember[@]}" "$bin" bench-search --url "$fhir" --patients "$patients" "${period_args[@]}" \
  --deep "$deep" "${query_args[@]}" --connections "$connections" --duration "$seconds" \
  --json "$out/search-$store.json" 2>&1 \
  | tee -a "$txt" || status=$?

peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
stop_server
echo -e "\nserver peak RSS: $((peak_kib / 1024)) MiB" | tee -a "$txt"

# The search index: every idx_* table with its own indexes, divided by the resources.
echo -e "\n== search index size" | tee -a "$txt"
case "$store" in
  postgres)
    psql "$url" -qX -v ON_ERROR_STOP=1 <<'SQL' | tee -a "$txt"
\pset footer off
ANALYZE;
WITH r AS (SELECT count(*) AS n FROM resources WHERE NOT deleted),
idx AS (
  SELECT c.relname AS table_name, pg_total_relation_size(c.oid) AS bytes, c.reltuples::bigint AS rows_est
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
  WHERE s.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE 'idx\_%'
)
SELECT table_name, pg_size_pretty(bytes) AS size, rows_est AS rows,
       round(bytes::numeric / NULLIF((SELECT n FROM r), 0)) AS bytes_per_resource
FROM idx
UNION ALL
SELECT 'all idx_*', pg_size_pretty(sum(bytes)), sum(rows_est)::bigint,
       round(sum(bytes)::numeric / NULLIF((SELECT n FROM r), 0))
FROM idx
UNION ALL
SELECT 'resource_versions (data)', pg_size_pretty(pg_total_relation_size('resource_versions')), NULL,
       round(pg_total_relation_size('resource_versions')::numeric / NULLIF((SELECT n FROM r), 0))
ORDER BY 1;
SELECT res_type, count(*) AS resources FROM resources WHERE NOT deleted GROUP BY 1 ORDER BY 1;
SQL
    ;;
  sqlite)
    file="$dir/ember.db"
    sqlite3 "$file" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    sqlite3 -header -column "$file" <<'SQL' | tee -a "$txt"
CREATE TEMP TABLE sizes AS
  SELECT m.tbl_name AS table_name, sum(d.pgsize) AS bytes
  FROM dbstat d JOIN sqlite_master m ON m.name = d.name
  GROUP BY m.tbl_name;
CREATE TEMP TABLE r AS SELECT count(*) AS n FROM resources WHERE deleted = 0;
SELECT table_name, printf('%.1f MiB', bytes / 1048576.0) AS size,
       round(1.0 * bytes / NULLIF((SELECT n FROM r), 0)) AS bytes_per_resource
FROM sizes WHERE table_name LIKE 'idx\_%' ESCAPE '\'
UNION ALL
SELECT 'all idx_*', printf('%.1f MiB', total(bytes) / 1048576.0),
       round(total(bytes) / NULLIF((SELECT n FROM r), 0))
FROM sizes WHERE table_name LIKE 'idx\_%' ESCAPE '\'
UNION ALL
SELECT table_name || CASE table_name WHEN 'resource_keys' THEN ' (search keys)' ELSE ' (data)' END,
       printf('%.1f MiB', bytes / 1048576.0),
       round(1.0 * bytes / NULLIF((SELECT n FROM r), 0))
FROM sizes WHERE table_name IN ('resource_versions', 'resource_keys')
ORDER BY 1;
SELECT res_type, count(*) AS resources FROM resources WHERE deleted = 0 GROUP BY 1 ORDER BY 1;
SQL
    echo "database file: $(( $(stat -c %s "$file") / 1048576 )) MiB" | tee -a "$txt"
    ;;
esac

if [[ $status != 0 ]]; then
  echo -e "\n!!! ember bench-search reported errors (exit $status): the search numbers are NOT valid !!!" | tee -a "$txt" >&2
  exit "$status"
fi
