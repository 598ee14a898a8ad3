#!/usr/bin/env bash
# The docs/sidecar.md curl walk-through, checked: every step's status code
# and the fields that matter. Usage: scripts/sidecar-smoke.sh [http://127.0.0.1:7181]
# against a sidecar of a running ensemble (e.g. the README's first command).
# Uses names under smoke-$RANDOM, so it can run against a live sidecar.
set -euo pipefail
S=${1:-http://127.0.0.1:7181}
N=smoke-$RANDOM
fails=0

# check WHAT EXPECTED_STATUS REGEX -- curl args...
check() {
    local what=$1 want=$2 re=$3
    shift 3
    local out status body
    out=$(curl -s -w '\n%{http_code}' "$@")
    status=${out##*$'\n'}
    body=${out%$'\n'*}
    if [[ $status == "$want" && $body =~ $re ]]; then
        echo "ok    $what"
    else
        echo "FAIL  $what: status $status (want $want), body: ${body:0:400}"
        fails=$((fails + 1))
    fi
    LAST=$body
}
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$LAST"; }

check "readyz" 200 '"ready":true' "$S/readyz"
check "create a lease" 201 '"lease":"lease-' -X POST "$S/v1/leases" -d '{"ttl_ms": 10000}'
L=$(field lease)
check "renew it" 200 "\"lease\":\"$L\"" -X POST "$S/v1/leases/$L/renew"
check "join a group under it" 200 '"member":"pod-1"' -X PUT "$S/v1/groups/$N/members/pod-1" -d "{\"data\": \"10.0.0.1:8080\", \"lease\": \"$L\"}"
check "list members" 200 '"name":"pod-1".*"value":"10.0.0.1:8080"' "$S/v1/groups/$N/members"
E=$(field etag)
check "long-poll returns at once on a stale etag" 200 '"name":"pod-1"' "$S/v1/groups/$N/watch?etag=stale&wait_ms=30000"
check "long-poll waits out an unchanged state" 200 "\"etag\":\"$E\"" "$S/v1/groups/$N/watch?etag=$E&wait_ms=200"
check "acquire a lock" 200 '"token":[0-9]+' -X POST "$S/v1/locks/$N/acquire" -d '{"timeout_ms": 5000}'
H=$(field holder)
T=$(field token)
check "inspect it" 200 "\"holder\":\"$H\"" "$S/v1/locks/$N"
check "a second try is busy" 409 '"code":"lock_busy"' -X POST "$S/v1/locks/$N/acquire" -d '{"timeout_ms": 0}'
check "wrong token" 403 '"code":"token_mismatch"' -X POST "$S/v1/locks/$N/release" -d "{\"holder\": \"$H\", \"token\": 1}"
check "wrong holder" 409 '"code":"not_holder"' -X POST "$S/v1/locks/$N/release" -d "{\"holder\": \"nobody\", \"token\": $T}"
check "release" 200 '"released":true' -X POST "$S/v1/locks/$N/release" -d "{\"holder\": \"$H\", \"token\": $T}"
check "campaign" 200 '"term":[0-9]+' -X POST "$S/v1/elections/$N/campaign" -d '{"data": "pod-1", "timeout_ms": 0}'
check "leader" 200 '"value":"pod-1"' "$S/v1/elections/$N"
check "kv create" 200 '"version":0' -X PUT "$S/v1/kv/$N" -d '{"value": "v1"}'
check "kv compare-and-set" 200 '"version":1' -X PUT "$S/v1/kv/$N" -d '{"value": "v2", "expected_version": 0}'
check "kv stale compare-and-set" 409 '"code":"version_conflict"' -X PUT "$S/v1/kv/$N" -d '{"value": "v3", "expected_version": 0}'
check "kv get" 200 '"value":"v2","version":1' "$S/v1/kv/$N"
check "illegal name" 400 '"code":"invalid_name"' -X POST "$S/v1/locks/a%2Fb/acquire"
check "malformed JSON" 400 '"code":"malformed_json"' -X PUT "$S/v1/kv/$N" -d '{"value":'
check "revoke the lease: the member leaves" 200 '"released":1' -X DELETE "$S/v1/leases/$L"
check "the group is empty" 200 '"members":\[\]' "$S/v1/groups/$N/members"
check "metrics" 200 '' "$S/metrics"
check "openapi" 200 '"openapi": *"3' "$S/openapi.json"
curl -s -X POST "$S/v1/elections/$N/resign" -d "{\"holder\": \"$(curl -s "$S/v1/holdings" | sed -n 's/.*"id":"\(candidate-[^"]*\)".*/\1/p')\"}" >/dev/null
curl -s -X DELETE "$S/v1/kv/$N" >/dev/null

if [[ $fails -gt 0 ]]; then
    echo "sidecar smoke: $fails failed"
    exit 1
fi
echo "sidecar smoke: all passed"
