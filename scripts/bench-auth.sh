#!/usr/bin/env bash
# The cost of authentication on reads, on PostgreSQL, in one run: two release
# instances on one database, one open and one checking bearer tokens from a local
# issuer (`ember bench-issuer`: an ES256 key, discovery and JWKS); `ember bench --ops
# read` runs against them in turn, `rounds` times each, and the ratio of the mean
# reads/s (with a token / without) is printed.
#
#   scripts/bench-auth.sh [connections] [seconds] [rounds]
#
# Uses $EMBER_BENCH_PG (default postgres://postgres@127.0.0.1:5432) and a fresh
# database `ember_bench_auth`. Results go to target/bench/auth-*.json and auth.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

connections=${1:-32}
seconds=${2:-10}
rounds=${3:-3}
open_port=18099
auth_port=18100
issuer_addr=127.0.0.1:18111
out=target/bench
mkdir -p "$out"

cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/ember
pg=${EMBER_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS ember_bench_auth' -c 'CREATE DATABASE ember_bench_auth'
url="$pg/ember_bench_auth"
"$bin" migrate --database-url "$url" >/dev/null

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop_all EXIT

audience="http://127.0.0.1:$auth_port/fhir"
"$bin" bench-issuer --listen "$issuer_addr" --audience "$audience" --scope 'user/*.*' \
  >"$out/auth-issuer.txt" 2>&1 &
pids+=($!)
until [ "$(wc -l <"$out/auth-issuer.txt")" -ge 2 ]; do sleep 0.05; done
issuer_url=$(sed -n 1p "$out/auth-issuer.txt")
token=$(sed -n 2p "$out/auth-issuer.txt")

EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$open_port EMBER_LOG=warn \
  "$bin" serve >"$out/auth-open-server.log" 2>&1 &
pids+=($!)
EMBER_DATABASE_URL=$url EMBER_LISTEN=127.0.0.1:$auth_port EMBER_LOG=warn \
  EMBER_AUTH_ISSUERS=$issuer_url EMBER_AUTH_AUDIENCE=$audience \
  "$bin" serve >"$out/auth-server.log" 2>&1 &
pids+=($!)
for port in $open_port $auth_port; do
  until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.01; done
done

echo "auth: reads at $connections connections, ${seconds}s x $rounds rounds each," \
  "alternating; open on :$open_port, tokens checked on :$auth_port" | tee "$out/auth.txt"
for round in $(seq 1 "$rounds"); do
  "$bin" bench --url "http://127.0.0.1:$open_port/fhir" --ops read --no-http-baseline \
    --connections "$connections" --duration "$seconds" \
    --json "$out/auth-open-$round.json" >/dev/null
  "$bin" bench --url "$audience" --ops read --no-http-baseline --bearer "$token" \
    --connections "$connections" --duration "$seconds" \
    --json "$out/auth-token-$round.json" >/dev/null
done

python3 - "$out" "$rounds" <<'EOF' | tee -a "$out/auth.txt"
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def reads(kind):
    rows = []
    for r in range(1, rounds + 1):
        report = json.load(open(f"{out}/auth-{kind}-{r}.json"))
        phase = next(p for p in report["phases"] if p["name"] == "read")
        if phase["errors"]:
            sys.exit(f"{kind} round {r}: {phase['errors']} errors: {phase.get('error_samples')}")
        rows.append(phase)
    return rows
open_, token = reads("open"), reads("token")
for kind, rows in (("without token", open_), ("with token", token)):
    rps = [p["requests_per_sec"] for p in rows]
    p50 = [p["p50_ms"] for p in rows]
    print(f"{kind}: reads/s {', '.join(f'{x:,.0f}' for x in rps)} (mean {sum(rps)/len(rps):,.0f});"
          f" p50 ms {', '.join(f'{x:.2f}' for x in p50)}")
mean = lambda rows: sum(p["requests_per_sec"] for p in rows) / len(rows)
print(f"with token / without: {100 * mean(token) / mean(open_):.1f} %")
EOF
