#!/usr/bin/env bash
# zkCli smoke test: the everyday ZooKeeper CLI commands, run through Apache
# ZooKeeper's own zkCli.sh (Debian package `zookeeper`, 3.8) against a server,
# with strict checks of what the CLI prints.
#
#   scripts/zkcli-smoke.sh HOST:PORT
#
# Covers: create -e/-s/-c/-t (TTL needs extended types on the server), ls,
# ls -s, get -s, get -w (one-shot watch), set -v, stat, delete -v, delete,
# deleteall, addWatch (persistent recursive), addauth + setAcl/getAcl
# (digest), sync, ephemerals vanishing when their session closes.
#
# zkCli.sh's one-shot mode (`zkCli.sh -server H:P cmd args`) opens a new
# session per command, so ephemerals and addauth would not survive between
# commands.  Instead each "session" below feeds several commands on stdin
# (zkCli reads stdin line by line when JLine is absent, as with Debian's
# classpath) and `-waitforconnection` makes it connect before the first one.
#
# Environment (all optional):
#   ZKCLI=/usr/share/zookeeper/bin/zkCli.sh   the CLI to use
#   ZKCLI_SMOKE_SUPER=super:test    also check that this superuser digest
#                                   identity may read a node it has no ACL on
#   ZKCLI_SMOKE_REAP_WAIT=0         seconds to wait for the server to reap an
#                                   emptied container and an expired TTL node
#                                   (0 = don't check reaping; the server's
#                                   container check interval must be well
#                                   below this, e.g. 1 s)
#   ZKCLI_SMOKE_KEEP=1              keep the work dir with raw outputs
# Exit status 0 only if every check passed.  Uses a unique base znode and
# deletes it at the end.
set -euo pipefail

HOSTPORT=${1:-}
if [ -z "$HOSTPORT" ] || [ "${HOSTPORT#-}" != "$HOSTPORT" ]; then
    sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
ZKCLI=${ZKCLI:-/usr/share/zookeeper/bin/zkCli.sh}
SUPER=${ZKCLI_SMOKE_SUPER:-}
REAP_WAIT=${ZKCLI_SMOKE_REAP_WAIT:-0}
[ -x "$ZKCLI" ] || { echo "zkcli-smoke: $ZKCLI not found (apt-get install zookeeper)" >&2; exit 2; }

B=/zkcli-smoke-$$-$RANDOM
WORK=$(mktemp -d /tmp/zkcli-smoke-XXXXXX)
cleanup() {
    if [ "${ZKCLI_SMOKE_KEEP:-0}" = 1 ] || [ "$failed" != 0 ]; then
        echo "zkcli-smoke: raw outputs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
failed=0
trap cleanup EXIT

checks=0
fail() { echo "zkcli-smoke: FAIL: $*" >&2; failed=$((failed + 1)); }
ok() { checks=$((checks + 1)); }

# Digest of user1:pass1 as ZooKeeper's DigestAuthenticationProvider computes
# it: base64(sha1("user:password")).
U=user1 P=pass1
HASH=$(printf '%s' "$U:$P" | openssl dgst -sha1 -binary 2>/dev/null | base64 2>/dev/null || true)
if [ -z "$HASH" ]; then
    HASH=$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha1(sys.argv[1].encode()).digest()).decode())' "$U:$P")
fi

# session NAME: run the commands on stdin in ONE zkCli session.
# $WORK/NAME.raw  everything zkCli printed
# $WORK/NAME.out  command output only (watch events, banners, logging removed)
# $WORK/NAME.ev   the watch event lines (printed by zkCli's event thread)
session() {
    local name=$1 rc=0
    { cat; echo quit; } >"$WORK/$name.in"
    timeout 120 "$ZKCLI" -waitforconnection -timeout 15000 -server "$HOSTPORT" \
        <"$WORK/$name.in" >"$WORK/$name.raw" 2>&1 || rc=$?
    echo "$rc" >"$WORK/$name.rc"
    grep -v -E '^(SLF4J: .*|Connecting to .*|Welcome to ZooKeeper!|JLine support is (en|dis)abled|WATCHER::|WatchedEvent .*|)$' \
        "$WORK/$name.raw" >"$WORK/$name.out" || true
    grep -E '^WatchedEvent ' "$WORK/$name.raw" >"$WORK/$name.ev" || true
    if [ "$rc" = 124 ]; then
        fail "$name: zkCli did not finish within 120 s"
    fi
    if ! grep -q -x 'WatchedEvent state:SyncConnected type:None path:null' "$WORK/$name.ev"; then
        fail "$name: zkCli never connected to $HOSTPORT"
        sed 's/^/    | /' "$WORK/$name.raw" | tail -20 >&2
        exit 1
    fi
    # `quit` closes the session; the CLI's last event is Closed.  Missing
    # means zkCli died or hung before reaching the end of its input.
    if [ "$(tail -1 "$WORK/$name.ev")" != 'WatchedEvent state:Closed type:None path:null' ]; then
        fail "$name: session did not end with a clean close (rc=$rc)"
    fi
    return 0
}

# expect_seq NAME: stdin holds extended regexes, one per line; each must match
# a WHOLE line of NAME.out, in this order (other lines may come between).
# Afterwards, any line of NAME.out that looks like an error and was not
# matched by an expected pattern fails the check.
expect_seq() {
    local name=$1 out=$WORK/$1.out
    local -a pats lines matched
    mapfile -t pats
    mapfile -t lines <"$out"
    local i=0 j=0 n=${#pats[@]}
    while [ "$i" -lt "$n" ] && [ "$j" -lt "${#lines[@]}" ]; do
        if [[ ${lines[$j]} =~ ^(${pats[$i]})$ ]]; then
            matched[j]=1
            i=$((i + 1))
        fi
        j=$((j + 1))
    done
    if [ "$i" -lt "$n" ]; then
        fail "$name: expected a line matching /^${pats[$i]}\$/ (check $((i + 1)) of $n) after line $j; output was:"
        sed 's/^/    | /' "$out" >&2
    else
        ok
    fi
    local errs=0
    for j in "${!lines[@]}"; do
        if [ -z "${matched[$j]:-}" ] && [[ ${lines[$j]} =~ (Exception|KeeperErrorCode|[Ee]rror|Insufficient|not exist|not valid|not empty|cannot|[Uu]nimplemented|Command not found|[Ii]nvalid) ]]; then
            fail "$name: unexpected output line: ${lines[$j]}"
            errs=$((errs + 1))
        fi
    done
    [ "$errs" = 0 ] && ok
    return 0
}

# expect_events NAME: like expect_seq, against the watch events of NAME.
expect_events() {
    local name=$1
    cp "$WORK/$name.ev" "$WORK/$name-events.out"
    expect_seq "$name-events"
}

# count_lines NAME REGEX N: exactly N whole lines of NAME's events match.
count_events() {
    local name=$1 re=$2 want=$3 got
    got=$(grep -c -x -E "$re" "$WORK/$name.ev" || true)
    if [ "$got" != "$want" ]; then
        fail "$name: $want event(s) /$re/ expected, saw $got"
    else
        ok
    fi
}

echo "zkcli-smoke: $ZKCLI against $HOSTPORT, base znode $B" >&2
q() { printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|]/\\&/g'; }  # regex-quote
QB=$(q "$B")
QHASH=$(q "$HASH")
STAT_KEYS='cZxid|ctime|mZxid|mtime|pZxid|cversion|dataVersion|aclVersion|ephemeralOwner|dataLength|numChildren'

# ---- session 1: create flavours, ls -s, get/set -v, stat, watches, ACLs ----
session s1 <<EOF
create $B base
create $B/p pdata
create -e $B/eph e
create -s $B/seq- s
create -c $B/cont
create $B/cont/child c
create -t 600000 $B/ttl t
create -t 1000 $B/ttl2
create -e $B/eph/child x
ls $B
ls -s $B
get -s $B/p
set -v 0 $B/p pdata2
set -v 0 $B/p stale
get -s $B/p
stat $B/eph
stat $B/ttl
stat $B/cont
get -w $B/p
set $B/p pdata3
set $B/p pdata4
addWatch $B/w
create $B/w w
create $B/w/c1 c
set $B/w/c1 c2
delete $B/w
delete $B/w/c1
getAcl $B
addauth digest $U:$P
create $B/secure s
setAcl $B/secure auth::cdrwa
getAcl $B/secure
get $B/secure
sync $B
delete -v 5 $B/p
delete -v 3 $B/p
stat $B/p
get $B/nope
EOF
expect_seq s1 <<EOF
Created $QB
Created $QB/p
Created $QB/eph
Created $QB/seq-0000000002
Created $QB/cont
Created $QB/cont/child
Created $QB/ttl
Created $QB/ttl2
Ephemerals cannot have children: $QB/eph/child
\[cont, eph, p, seq-0000000002, ttl, ttl2\]
\[cont, eph, p, seq-0000000002, ttl, ttl2\]
cversion = 6
dataVersion = 0
ephemeralOwner = 0x0
dataLength = 4
numChildren = 6
pdata
dataVersion = 0
ephemeralOwner = 0x0
dataLength = 5
numChildren = 0
version No is not valid : $QB/p
pdata2
dataVersion = 1
dataLength = 6
ephemeralOwner = 0x[1-9a-f][0-9a-f]*
dataLength = 1
numChildren = 0
ephemeralOwner = 0x0
dataLength = 1
ephemeralOwner = 0x0
dataLength = 0
numChildren = 1
pdata2
Created $QB/w
Created $QB/w/c1
Node not empty: $QB/w
'world,'anyone
: cdrwa
Created $QB/secure
'digest,'$U:$QHASH
: cdrwa
s
Sync is OK
version No is not valid : $QB/p
Node does not exist: $QB/p
Node does not exist: $QB/nope
EOF
# the first stat block (from `ls -s`): exactly ZooKeeper's 11 fields, in order
if ! awk -v re="^($STAT_KEYS) = " '$0 ~ re {print $1}' "$WORK/s1.out" | head -11 | tr '\n' ' ' |
    grep -q -x 'cZxid ctime mZxid mtime pZxid cversion dataVersion aclVersion ephemeralOwner dataLength numChildren '; then
    fail "s1: ls -s did not print the 11 stat fields in ZooKeeper's order"
else
    ok
fi
expect_events s1 <<EOF
WatchedEvent state:SyncConnected type:NodeDataChanged path:$QB/p
WatchedEvent state:SyncConnected type:NodeCreated path:$QB/w
WatchedEvent state:SyncConnected type:NodeCreated path:$QB/w/c1
WatchedEvent state:SyncConnected type:NodeDataChanged path:$QB/w/c1
WatchedEvent state:SyncConnected type:NodeDeleted path:$QB/w/c1
EOF
# get -w is a one-shot watch: two sets, one event.  addWatch is persistent.
count_events s1 "WatchedEvent state:SyncConnected type:NodeDataChanged path:$QB/p" 1
count_events s1 "WatchedEvent .* path:$QB/w(/.*)?" 4

# ---- session 2: a new session: ephemeral gone, ACL enforced, addauth ------
session s2 <<EOF
ls $B
get $B/secure
set $B/secure x
addauth digest $U:wrong
get $B/secure
addauth digest $U:$P
get $B/secure
delete $B/cont/child
ls -s $B/cont
EOF
expect_seq s2 <<EOF
\[cont, secure, seq-0000000002, ttl, ttl2, w\]
Insufficient permission : $QB/secure
Insufficient permission : $QB/secure
Insufficient permission : $QB/secure
s
\[\]
numChildren = 0
EOF

if [ -n "$SUPER" ]; then
    session s2super <<EOF
get $B/secure
addauth digest $SUPER
get $B/secure
EOF
    expect_seq s2super <<EOF
Insufficient permission : $QB/secure
s
EOF
fi

# ---- optional: the server reaps the emptied container and the expired TTL node
if [ "$REAP_WAIT" != 0 ]; then
    deadline=$((SECONDS + REAP_WAIT))
    reaped=0
    while [ "$SECONDS" -lt "$deadline" ]; do
        sleep 2
        session reap <<<"ls $B"
        if grep -q -x "\[secure, seq-0000000002, ttl, w\]" "$WORK/reap.out"; then
            reaped=1; break
        fi
    done
    if [ "$reaped" = 1 ]; then
        ok
    else
        fail "reap: container $B/cont (emptied) and TTL node $B/ttl2 (1 s) still listed after ${REAP_WAIT}s:"
        sed 's/^/    | /' "$WORK/reap.out" >&2
    fi
fi

# ---- session 3: deleteall (refused below a node we may not read, then with auth)
session s3 <<EOF
deleteall $B
addauth digest $U:$P
deleteall $B
ls $B
stat $B
EOF
expect_seq s3 <<EOF
Insufficient permission : $QB/secure
Node does not exist: $QB
Node does not exist: $QB
EOF

if [ "$failed" != 0 ]; then
    echo "zkcli-smoke: $failed check(s) FAILED, $checks passed" >&2
    exit 1
fi
echo "zkcli-smoke: all $checks checks passed against $HOSTPORT"
