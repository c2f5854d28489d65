#!/usr/bin/env bash
# Where the write-ahead log of Observation creates goes, by table and index: a release
# build of Ember on a fresh PostgreSQL database takes `ember bench --ops create` for a
# few seconds, and the WAL written meanwhile is read back with pg_waldump and summed per
# relation (a record counts for the relation of its first block; full-page images
# included), then divided by the versions stored. pg_stat_wal's totals are printed
# beside, as a check, and the creates/s of the measured run.
#
#   scripts/wal-per-create.sh [connections] [seconds] [variant]
#
# A variant changes the fresh database after migrating, to measure what one part of
# the write path costs. Each is a diagnostic only: searches are wrong in that database.
#   without-count-trigger  drops the token-count triggers (no `_summary=count` upkeep)
#   without-full-text      drops the rows for `_text` and `_content` before they are stored
#   without-rid-indexes    drops the `(rid, …)` indexes of the index tables
#
# Needs PostgreSQL on this machine (pg_waldump reads its pg_wal folder) at
# $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432). Writes
# target/bench/wal-per-create.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

connections=${1:-32}
seconds=${2:-5}
variant=${3:-}
port=18098
out=target/bench
mkdir -p "$out"
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db=ember_wal
url="$pg/$db"

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember
waldump=$(ls /usr/lib/postgresql/*/bin/pg_waldump 2>/dev/null | tail -1)
[ -x "$waldump" ] || waldump=$(command -v pg_waldump)
sql() { psql "$url" -Atqc "$1"; }
wal_dir=$(sql 'SHOW data_directory' 2>/dev/null || psql "$pg/postgres" -Atqc 'SHOW data_directory')/pg_wal

psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"$bin" migrate --database-url "$url" >/dev/null
case "$variant" in
  "") ;;
  without-count-trigger)
    sql 'DROP TRIGGER idx_token_added ON idx_token; DROP TRIGGER idx_token_removed ON idx_token' ;;
  without-full-text)
    sql 'CREATE FUNCTION wal_diag_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER wal_diag_skip BEFORE INSERT ON idx_text FOR EACH ROW EXECUTE FUNCTION wal_diag_skip()' ;;
  without-rid-indexes)
    sql 'DROP INDEX idx_string_rid, idx_token_rid, idx_date_rid, idx_number_rid, idx_quantity_rid,
         idx_reference_rid, idx_uri_rid, idx_text_rid, idx_timeline_rid' ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$port EMBER_LOG=warn "$bin" serve >"$out/wal-server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
  kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/wal-server.log" >&2; exit 1; }
  sleep 0.05
done

# A first run fills the caches and the tables' first pages; the measured run follows.
"$bin" bench --url "http://127.0.0.1:$port/fhir" --ops create --no-http-baseline \
  --connections "$connections" --duration 2 >/dev/null
sql 'CHECKPOINT' >/dev/null
versions_before=$(sql 'SELECT count(*) FROM resource_versions')
read -r lsn_before bytes_before records_before fpi_before < <(sql \
  "SELECT pg_current_wal_insert_lsn(), wal_bytes, wal_records, wal_fpi FROM pg_stat_wal" | tr '|' ' ')
"$bin" bench --url "http://127.0.0.1:$port/fhir" --ops create --no-http-baseline \
  --connections "$connections" --duration "$seconds" 2>/dev/null | grep '^create' >"$out/wal-bench.txt"
read -r lsn_after bytes_after records_after fpi_after < <(sql \
  "SELECT pg_current_wal_insert_lsn(), wal_bytes, wal_records, wal_fpi FROM pg_stat_wal" | tr '|' ' ')
versions=$(( $(sql 'SELECT count(*) FROM resource_versions') - versions_before ))
db_oid=$(sql "SELECT oid FROM pg_database WHERE datname = '$db'")
sql 'SELECT relfilenode, relname FROM pg_class WHERE relfilenode <> 0' >"$out/wal-relations.txt"

"$waldump" -p "$wal_dir" -s "$lsn_before" -e "$lsn_after" 2>/dev/null | python3 -c '
import re, sys
versions, db_oid, rel_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
names = dict(line.rstrip("\n").split("|", 1) for line in open(rel_file) if "|" in line)
by = {}
for line in sys.stdin:
    m = re.search(r"len \(rec/tot\):\s*\d+/\s*(\d+)", line)
    if not m:
        continue
    rel = re.search(r"rel \d+/(\d+)/(\d+)", line)
    if rel and rel.group(1) == db_oid:
        key = names.get(rel.group(2), "relfilenode " + rel.group(2))
    elif rel:
        key = "(other databases)"
    else:
        key = "(" + line.split()[1] + " records without a relation)"
    n, b = by.get(key, (0, 0))
    by[key] = (n + 1, b + int(m.group(1)))
total_n = sum(n for n, _ in by.values())
total_b = sum(b for _, b in by.values())
print("%d versions stored; per create:" % versions)
print("%-44s %8s %8s %7s" % ("relation", "records", "bytes", "share"))
for key, (n, b) in sorted(by.items(), key=lambda kv: -kv[1][1]):
    print("%-44s %8.2f %8.0f %6.1f%%" % (key, n / versions, b / versions, 100 * b / total_b))
print("%-44s %8.2f %8.0f" % ("total", total_n / versions, total_b / versions))
' "$versions" "$db_oid" "$out/wal-relations.txt" | tee "$out/wal-per-create.txt"
echo "pg_stat_wal: $(( (records_after - records_before) / versions )) records," \
  "$(( (bytes_after - bytes_before) / versions )) bytes," \
  "per create, and $(( fpi_after - fpi_before )) full-page images in all (whole cluster)" \
  | tee -a "$out/wal-per-create.txt"
echo "creates/s of the measured run: $(awk '{print $3}' "$out/wal-bench.txt")" | tee -a "$out/wal-per-create.txt"
