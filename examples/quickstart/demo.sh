#!/usr/bin/env bash
# claimcheck quickstart: build claimcheck, serve the quickstart config on
# 127.0.0.1:9191, and ask it for decisions over real gRPC — the same
# envoy.service.auth.v3 Check call Envoy makes. Needs only Go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
bin="$work/claimcheck"
addr=127.0.0.1:9191

echo "== building claimcheck"
(cd "$root" && go build -o "$bin" ./cmd/claimcheck)

echo "== validating $here/config.yaml"
"$bin" validate --config "$here/config.yaml"

echo "== serving on $addr (log: $work/serve.log)"
"$bin" serve --config "$here/config.yaml" 2>"$work/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  grep -q 'ready: keys and policy loaded' "$work/serve.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done

# A key an attacker made, with the same kid as the real one.
"$bin" token keygen --alg ES256 --kid quickstart-dev-1 --private "$work/attacker.json" --jwks "$work/attacker-jwks.json" >/dev/null

mint() { # mint CLIENT_ID [AUDIENCE [KEY [extra JSON members]]]
  "$bin" token mint --key "${3:-$here/dev-signing-key.json}" \
    --claims "{\"iss\":\"https://id.quickstart.example\",\"aud\":\"${2:-orders-api}\",\"sub\":\"$1\",\"client_id\":\"$1\",\"scope\":\"orders:read\"${4:+,$4}}"
}

failures=0
ask() { # ask "DESCRIPTION" EXPECTED(allowed|denied) check-flags...
  local what=$1 want=$2; shift 2
  local got
  got=$("$bin" check --server "$addr" --brief "$@") || true
  printf '%-48s -> %s\n' "$what" "$got"
  case "$got" in "$want "*) ;; *) echo "   UNEXPECTED: wanted $want"; failures=$((failures+1));; esac
}

echo "== decisions"
ask "service-client-id reads /orders/42"     allowed --method GET --path /orders/42 --token "$(mint service-client-id)"
ask "some-other-client reads /orders/42"     denied  --method GET --path /orders/42 --token "$(mint some-other-client)"
ask "service-client-id deletes /orders/42"   denied  --method DELETE --path /orders/42 --token "$(mint service-client-id)"
ask "service-client-id reads /ordersadmin"   denied  --method GET --path /ordersadmin --token "$(mint service-client-id)"
ask "no token"                               denied  --method GET --path /orders/42
ask "expired token"                          denied  --method GET --path /orders/42 --token "$(mint service-client-id orders-api "" '"exp":1700000000')"
ask "token for another audience"             denied  --method GET --path /orders/42 --token "$(mint service-client-id billing-api)"
ask "token signed by an attacker's key"      denied  --method GET --path /orders/42 --token "$(mint service-client-id orders-api "$work/attacker.json")"
ask "token in the access_token query param"  allowed --method GET --path "/orders?access_token=$(mint service-client-id)"

echo "== stopping (SIGTERM)"
kill -TERM "$pid"
wait "$pid"
trap 'rm -rf "$work"' EXIT
if [ "$failures" -ne 0 ]; then
  echo "demo: $failures unexpected decision(s)"; cat "$work/serve.log"; exit 1
fi
echo "demo: all decisions as expected"
