#!/usr/bin/env bash
# Benchmarks Ember's CDS Hooks service `telemonitoring-summary` (patient-view) on a
# release build, on PostgreSQL: a fresh database, `ember serve` on a loopback address
# (so the CDS services need no client JWT), `ember dataset` loaded into it, then
# `ember bench --ops cds`: measurements are submitted for CDS_PATIENTS of the dataset's
# patients (SUBMISSIONS each, some red) so they have open triage Tasks, and the service
# is called at CONNECTIONS connections for SECONDS each in two modes, with the prefetch
# and reading Ember's own store (fhirServer = the FHIR base URL). It reports calls/s,
# p50/p99 of both against the targets (p99 < 25 ms with the prefetch, < 50 ms from the
# own store) and their p99 ratio, then stops the server and drops the database.
#
#   scripts/bench-cds.sh [PATIENTS] [PERIOD] [CONNECTIONS] [SECONDS] [CDS_PATIENTS] [SUBMISSIONS]
#   scripts/bench-cds.sh                    # 300 patients x 1 year, 16 connections, 10 s, 200 called, 4 each
#   scripts/bench-cds.sh 40 30d 16 5 40 3   # a quick run
#
# PERIOD is the history per patient: whole years (`1`, passed as --years) or days
# (`100d`, passed as --days). A patient has about 4.3 home readings a day and a lab
# panel every 4 weeks (about 1,600 Observations a year); no deep patients are loaded.
#
# Environment (the script's own, kept out of Ember's):
#   EMBER_BENCH_PG       PostgreSQL server URL (default postgres://postgres@127.0.0.1:5432);
#                        the database is `ember_bench_cds`
#   EMBER_BENCH_PORT     the port Ember listens on at 127.0.0.1 (default 18097)
#   EMBER_BENCH_LOG      Ember's EMBER_LOG (default warn; `info` writes the access log,
#                        every request's duration_ms, to target/bench/cds-server.log, and
#                        the report then gives the server-side p50/p99 of each mode)
#   EMBER_BENCH_KEEP_DB=1   keep the database at the end
#   EMBER_BENCH_REUSE_DB=1  skip the load and measure the database kept by an earlier run
#                           with the same PATIENTS and PERIOD (its Tasks accumulate)
# Output goes to target/bench/cds.{txt,json} and cds-*.log. Exits non-zero when the load
# or the cds phase failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage="usage: scripts/bench-cds.sh [PATIENTS] [YEARS|DAYSd] [CONNECTIONS] [SECONDS] [CDS_PATIENTS] [SUBMISSIONS]"
patients=${1:-300}
period=${2:-1}
if [[ $period =~ ^([0-9]+)d$ ]]; then
  period_args=(--days "${BASH_REMATCH[1]}")
elif [[ $period =~ ^[0-9]+$ ]]; then
  period_args=(--years "$period")
else
  echo "bad period $period (years like 1, or days like 100d); $usage" >&2
  exit 2
fi
connections=${3:-16}
seconds=${4:-10}
cds_patients=${5:-200}
submissions=${6:-4}
for n in "$patients" "$connections" "$seconds" "$cds_patients" "$submissions"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "not a number: $n; $usage" >&2; exit 2; }
done
if (( cds_patients > patients )); then cds_patients=$patients; fi
port=${EMBER_BENCH_PORT:-18097}
log=${EMBER_BENCH_LOG:-warn}
keep=${EMBER_BENCH_KEEP_DB:-0}
reuse=${EMBER_BENCH_REUSE_DB:-0}
[[ $reuse == 1 ]] && keep=1
seed=42
out=target/bench
mkdir -p "$out"
txt="$out/cds.txt"

cargo build --release --quiet -p ember
bin=${CARGO_TARGET_DIR:-target}/release/ember
# Ember refuses unknown EMBER_* variables: the script's own stay out of its environment,
# and so do `ember bench`'s, which are given as flags.
# (An array, not a function: `$!` of a backgrounded command must be Ember's pid.)
ember=(env -u EMBER_BENCH_PG -u EMBER_BENCH_PORT -u EMBER_BENCH_LOG -u EMBER_BENCH_KEEP_DB
  -u EMBER_BENCH_REUSE_DB)

pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
db=ember_bench_cds
url="$pg/$db"
if [[ $reuse != 1 ]]; then
  PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" \
    -c "CREATE DATABASE $db"
fi
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
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  else
    echo "kept the database: $url"
  fi
}
trap cleanup EXIT

"${ember[@]}" EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$port EMBER_LOG="$log" \
  "$bin" serve >"$out/cds-server.log" 2>&1 &
pid=$!
until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
  kill -0 "$pid" 2>/dev/null || { echo "ember exited; see $out/cds-server.log" >&2; exit 1; }
  sleep 0.01
done
# The FHIR base URL as Ember sees itself (from the Host header): the own-store calls'
# fhirServer must be exactly this.
fhir="http://127.0.0.1:$port/fhir"

{
  dirty=$([[ -z $(git status --porcelain 2>/dev/null) ]] || echo ' (dirty tree)')
  echo "cds: commit $(git rev-parse --short HEAD)$dirty," \
    "patients=$patients period=$period (${period_args[*]}) connections=$connections seconds=$seconds" \
    "cds_patients=$cds_patients submissions=$submissions EMBER_LOG=$log"
  echo
  echo "== ember dataset"
} | tee "$txt"
status=0
if [[ $reuse == 1 ]]; then
  echo "reusing the loaded database $url: no load" | tee -a "$txt"
else
  "${ember[@]}" "$bin" dataset --url "$fhir" --patients "$patients" "${period_args[@]}" \
    --deep none --seed "$seed" 2>&1 | tee "$out/cds-dataset.log" | tee -a "$txt" || status=$?
  if [[ $status != 0 ]]; then
    echo "ember dataset failed (exit $status); see $out/cds-dataset.log" | tee -a "$txt" >&2
    exit "$status"
  fi
  # What autovacuum does soon after a bulk load: planner statistics and the visibility map.
  start=$(date +%s.%N)
  psql "$url" -qc "VACUUM ANALYZE"
  echo "vacuum analyze after the load: $(echo "$(date +%s.%N) - $start" | bc) s" | tee -a "$txt"
fi

echo -e "\n== ember bench --ops cds" | tee -a "$txt"
"${ember[@]}" "$bin" bench --url "$fhir" --ops cds --no-http-baseline \
  --connections "$connections" --duration "$seconds" --dataset-seed "$seed" \
  --cds-patients "$cds_patients" --cds-submissions "$submissions" --pid "$pid" \
  --json "$out/cds.json" 2>&1 | tee -a "$txt" || status=$?

stop_server
if [[ $status == 0 && ( $log == info || $log == debug ) ]]; then
  # The server's own duration of the measured calls of each mode (the access log's
  # duration_ms, from the request's arrival to its answer), next to what the bench saw.
  echo -e "\n== server-side duration of the measured calls (access log, POST /cds-services/{id})" | tee -a "$txt"
  python3 - "$out/cds-server.log" "$out/cds.json" <<'EOF' | tee -a "$txt"
import datetime, json, re, sys
report = json.load(open(sys.argv[2]))
c = report.get("cds") or sys.exit("no cds section in the report")
modes = [("with prefetch", "with_prefetch"), ("own store", "own_store")]
vals = {key: [] for _, key in modes}
epoch = datetime.datetime(1970, 1, 1)
for line in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    body = d.get("body", "")
    if "route=/cds-services/{id}" not in body or "method=POST" not in body:
        continue
    m = re.search(r"duration_ms=([0-9.]+)", body)
    if not m:
        continue
    t = datetime.datetime.strptime(d["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    us = (t - epoch) // datetime.timedelta(microseconds=1)
    for _, key in modes:
        a, b = c[f"{key}_window_us"]
        if a <= us <= b:
            vals[key].append(float(m.group(1)))
def pct(v, p):
    return v[max(0, min(len(v) - 1, -(-p * len(v) // 100) - 1))]
for label, key in modes:
    v = sorted(vals[key])
    bench = c[key]
    if not v:
        print(f"  {label:<14} no access-log lines in its window")
        continue
    print(f"  {label:<14} server p50 {pct(v, 50):.2f} ms  p99 {pct(v, 99):.2f} ms  max {v[-1]:.2f} ms"
          f"  ({len(v)} calls); the bench saw p50 {bench['p50_ms']:.2f} ms  p99 {bench['p99_ms']:.2f} ms")
EOF
fi

if [[ $status != 0 ]]; then
  echo -e "\n!!! ember bench --ops cds failed (exit $status): the numbers are NOT valid !!!" | tee -a "$txt" >&2
  exit "$status"
fi
