#!/usr/bin/env bash
# Compares two release builds of Ember on PostgreSQL, alternating them so that drift of
# the machine falls on both: JSON creates (`ember bench --ops create`) or reads
# (`--ops create,read`), a fresh database each time, A, B, A, B…; or searches (`ember bench-search` on one data set
# loaded once; one query kind at a time, A B then B A in turn, so that a drift within a
# round cancels too). Prints each run, the ratio B/A of the requests/s summed over the
# rounds and the median of the rounds' own ratios.
#
#   scripts/ab.sh create BIN_A BIN_B [rounds] [connections] [seconds]
#   scripts/ab.sh read   BIN_A BIN_B [rounds] [connections] [seconds]
#   scripts/ab.sh search BIN_A BIN_B [rounds] [connections] [seconds]
#   scripts/ab.sh submit BIN_A BIN_B [rounds] [connections] [seconds]
#
# Submit posts measurements to `$submit-measurement` (`ember bench --ops submit`) on the
# first of two instances of the build on one database, both triaging, as
# `scripts/bench.sh` does; it reports submissions/s.
#
# BIN_A and BIN_B are `ember` binaries (copy each build aside, e.g. to /tmp/ember-a).
# The client is BIN_B's own `ember bench`/`bench-search`, so both servers see the same
# requests. Search loads `ember dataset` with EMBER_BENCH_PATIENTS (default 200) patients
# of EMBER_BENCH_DAYS (default 30) days and the deep patients EMBER_BENCH_DEEP (default
# 1000,5000); EMBER_BENCH_QUERIES (comma-separated kinds) runs only those. Uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a
# database `ember_ab`, dropped at the end. Output: target/bench/ab-<mode>.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage="usage: scripts/ab.sh create|read|search|submit BIN_A BIN_B [rounds] [connections] [seconds]"
mode=${1:?$usage}
bin_a=${2:?$usage}
bin_b=${3:?$usage}
[[ $mode =~ ^(create|read|search|submit)$ ]] || { echo "$usage" >&2; exit 2; }
rounds=${4:-3}
connections=${5:-32}
seconds=${6:-10}
patients=${EMBER_BENCH_PATIENTS:-200}
days=${EMBER_BENCH_DAYS:-30}
deep=${EMBER_BENCH_DEEP:-1000,5000}
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
port=18097
url="$pg/ember_ab"
out=target/bench
mkdir -p "$out"
txt="$out/ab-$mode.txt"
# Ember refuses unknown EMBER_* variables: this script's own stay out of its environment.
clean=(env -u EMBER_BENCH_PATIENTS -u EMBER_BENCH_DAYS -u EMBER_BENCH_DEEP -u EMBER_BENCH_PG
  -u EMBER_BENCH_QUERIES)
fhir="http://127.0.0.1:$port/fhir"

pid=
pid2=
stop() {
  for p in $pid $pid2; do kill "$p" 2>/dev/null || true; done
  for p in $pid $pid2; do wait "$p" 2>/dev/null || true; done
  pid=
  pid2=
}
fresh_db() {
  PGOPTIONS=--client-min-messages=warning psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ember_ab" -c "CREATE DATABASE ember_ab"
}
trap 'stop; psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ember_ab" >/dev/null 2>&1 || true' EXIT

# serve BIN PORT LOG: starts an instance (its pid in $served) and waits until it is ready.
served=
serve() {
  "${clean[@]}" EMBER_DATABASE_URL="$url" EMBER_LISTEN=127.0.0.1:$2 EMBER_LOG=warn \
    "$1" serve >"$3" 2>&1 &
  served=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$2/readyz"; do
    kill -0 "$served" 2>/dev/null || { echo "ember exited; see $3" >&2; exit 1; }
    sleep 0.01
  done
}

# start BIN: one instance, and for submit a second on the same database.
start() {
  "${clean[@]}" "$1" migrate --database-url "$url" >/dev/null
  serve "$1" "$port" "$out/ab-server.log"
  pid=$served
  if [[ $mode == submit ]]; then
    serve "$1" $((port + 1)) "$out/ab-server2.log"
    pid2=$served
  fi
}

# Requests/s of one run: the phase of the mode (submissions/s for submit), or every
# query kind's.
rate() {
  python3 - "$1" "$mode" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if sys.argv[2] == "submit":
    print(r["submit"]["http"]["requests_per_sec"])
elif sys.argv[2] != "search":
    print(next(p["requests_per_sec"] for p in r["phases"] if p["name"] == sys.argv[2]))
else:
    errors = r.get("errors", 0)
    if errors:
        sys.exit(f"{errors} wrong answers")
    print(r["queries"][0]["stats"]["requests_per_sec"])
PY
}

echo "mode=$mode A=$bin_a B=$bin_b rounds=$rounds connections=$connections seconds=$seconds" | tee "$txt"
if [[ $mode == search ]]; then
  fresh_db
  start "$bin_b"
  "${clean[@]}" "$bin_b" dataset --url "$fhir" --patients "$patients" --days "$days" --deep "$deep" \
    >"$out/ab-dataset.log" 2>&1
  stop
  psql "$url" -qc "VACUUM ANALYZE"
  echo "loaded $patients patients x $days days, deep $deep" | tee -a "$txt"
fi
# The query kinds, one at a time: those asked for, or every kind of `bench-search`.
kinds=("$mode")
if [[ $mode == search ]]; then
  all=$("$bin_b" bench-search --help | tr -d '\n ' | grep -o 'default:subject-code-date[^]]*' | cut -d: -f2)
  IFS=, read -r -a kinds <<<"${EMBER_BENCH_QUERIES:-$all}"
fi

# One run of `bin` on one kind: prints its requests/s.
run() {
  local bin=$1 kind=$2 json="$out/ab-$mode.json"
  if [[ $mode != search ]]; then
    local ops=create
    [[ $mode == read ]] && ops=create,read
    [[ $mode == submit ]] && ops=submit
    fresh_db
    start "$bin"
    "${clean[@]}" "$bin_b" bench --url "$fhir" --ops "$ops" --connections "$connections" \
      --duration "$seconds" --no-http-baseline --json "$json" >/dev/null 2>&1
  else
    start "$bin"
    "${clean[@]}" "$bin_b" bench-search --url "$fhir" --patients "$patients" --days "$days" \
      --deep "$deep" --queries "$kind" --connections "$connections" --duration "$seconds" \
      --json "$json" >/dev/null 2>&1 || true
  fi
  stop
  rate "$json"
}

declare -A sums ratios
for round in $(seq 1 "$rounds"); do
  for i in "${!kinds[@]}"; do
    kind=${kinds[$i]}
    order=(a b)
    (( (round + i) % 2 == 0 )) && order=(b a)
    declare -A got=()
    for side in "${order[@]}"; do
      bin=$bin_a
      [[ $side == b ]] && bin=$bin_b
      got[$side]=$(run "$bin" "$kind")
      sums[$side.$kind]=$(echo "${sums[$side.$kind]:-0} + ${got[$side]}" | bc)
    done
    ratios[$kind]+=" $(echo "scale=4; 100 * ${got[b]} / ${got[a]}" | bc)"
    echo "round $round $kind: a=${got[a]} b=${got[b]} (${order[*]})" | tee -a "$txt"
  done
done
echo | tee -a "$txt"
for kind in "${kinds[@]}"; do
  median=$(printf '%s\n' ${ratios[$kind]} | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}')
  echo "$kind B/A $(echo "scale=2; 100 * ${sums[b.$kind]} / ${sums[a.$kind]}" | bc) % of the sums, median of the rounds $median %"
done | tee -a "$txt"
