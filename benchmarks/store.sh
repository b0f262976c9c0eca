#!/usr/bin/env bash
# Item store benchmark: GetItem, PutItem, Query and UpdateItem through the DynamoDB JSON API, edgeproxy
# (origin: { store: dynamodb }, LMDB, durable writes) side by side with dynalite (npm, pinned in store/package.json; in
# memory) on the same core, plus GET of the same items through edgeproxy's REST origin (origin: { store: rest }; dynalite
# has none). Both servers on CPU 0, wrk (one Lua script per operation, store/ops.lua) on CPU 1, the same requests in the
# same order against both, interleaved rounds, medians. Goal: edgeproxy >= 20x dynalite on every operation.
#
#   bash benchmarks/store.sh                   # ROUNDS=3 x (WARMUP=1 + DURATION=5 s) x 9 runs; about 3.5 minutes
#   DURATION=1 ROUNDS=1 bash benchmarks/store.sh          # an end-to-end check (1-2 minutes): no real numbers
#
# Environment: DURATION (5), WARMUP (1), ROUNDS (3), CONNS (64; wrk -t1 -cCONNS), OPS ("GetItem PutItem Query
#   UpdateItem"), REST (1; 0 skips the REST GET row), ITEMS (10000), PARTS (1000 partitions of 10 items), PAYLOAD (160:
#   items of ~200 bytes as DynamoDB counts them), DYNALITE_DISK (0: in memory; 1: --path in the temp dir, LevelDB, not
#   synced either), PORT_BASE (19860: 2 ports), EDGEPROXY (a binary; default: build the working tree into build-bench/,
#   Release), KEEP_TMP=1.
# Needs wrk, curl, node >= 20 and npm (wrk and curl installed from Debian when run as root); dynalite is installed by
# `npm ci` into benchmarks/store/node_modules (git-ignored).
set -euo pipefail

BENCH=store
REPO=$(cd "$(dirname "$0")/.." && pwd)
STORE_DIR=$REPO/benchmarks/store
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
OPS=${OPS:-GetItem PutItem Query UpdateItem}
REST=${REST:-1}
ITEMS=${ITEMS:-10000}
PARTS=${PARTS:-1000}
PAYLOAD=${PAYLOAD:-160}
DYNALITE_DISK=${DYNALITE_DISK:-0}
PORT_BASE=${PORT_BASE:-19860}
GOAL=20
SERVER_CPU=0
LOAD_CPU=1

. "$REPO/benchmarks/lib.sh"
declare -A pkg_of=([wrk]=wrk [curl]=curl [node]=nodejs [npm]=npm)
bench_tools
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "dynalite $(node -p "require('$STORE_DIR/package.json').dependencies.dynalite") needs node >= 20, not $(node -v)"
log "installing dynalite into $STORE_DIR/node_modules (npm ci)"
(cd "$STORE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $STORE_DIR failed"
DYNALITE_JS=$STORE_DIR/node_modules/dynalite/cli.js
DYNALITE_VERSION=$(node -p "require('$STORE_DIR/node_modules/dynalite/package.json').version")
bench_build
bench_tmp edgeproxy-store-bench
bench_ports "$PORT_BASE" 2
EP_PORT=$PORT_BASE
DY_PORT=$((PORT_BASE + 1))
EP_URL=http://127.0.0.1:$EP_PORT/
DY_URL=http://127.0.0.1:$DY_PORT/
LUA=$STORE_DIR/ops.lua
LOAD=$STORE_DIR/load.mjs

n_ops=$(wc -w <<<"$OPS")
n_runs=$((2 * n_ops + (REST == 1 ? 1 : 0)))
log "estimated time: $((ROUNDS * n_runs * (WARMUP + DURATION) + n_runs + 30)) s ($ROUNDS rounds x $n_runs runs of ${WARMUP}s + ${DURATION}s, the checks and the loading)"

# ---- edgeproxy: the DynamoDB route at /, and the REST route at /rest when this edgeproxy has it ----
mkdir -p "$TMP/edge"
edge_conf() { # edge_conf WITH_REST
    cat <<YAML
threads: 1
data_dir: $TMP/edge/data
listen:
  - { address: 127.0.0.1, port: $EP_PORT }
access_log: { enabled: false }
store: { path: $TMP/edge/store, max_size: 4GiB }
hosts:
  "*":
    routes:
      - { path: /, origin: { store: dynamodb } }
YAML
    [ "$1" = 1 ] && echo "      - { path: /rest, origin: { store: rest, tables: [items] } }"
    return 0
}
REST_NOTE=
if [ "$REST" = 1 ]; then
    edge_conf 1 >"$TMP/edge/edge.yaml"
    if ! err=$("$EDGEPROXY" -t -c "$TMP/edge/edge.yaml" 2>&1); then
        REST=0
        REST_NOTE="REST GET skipped: this edgeproxy does not take origin: { store: rest } ($(head -1 <<<"$err"))"
        log "$REST_NOTE"
    fi
else
    REST_NOTE="REST GET skipped (REST=0)"
fi
[ "$REST" = 1 ] || edge_conf 0 >"$TMP/edge/edge.yaml"
"$EDGEPROXY" -t -c "$TMP/edge/edge.yaml" >/dev/null 2>&1 || { "$EDGEPROXY" -t -c "$TMP/edge/edge.yaml"; die "bad edgeproxy conf"; }

# ---- dynalite: in memory (its default) unless DYNALITE_DISK=1 ----
dy_args=(--host 127.0.0.1 --port "$DY_PORT")
if [ "$DYNALITE_DISK" = 1 ]; then
    mkdir -p "$TMP/dynalite"
    dy_args+=(--path "$TMP/dynalite")
    DY_MODE="LevelDB in $TMP/dynalite (--path; writes not synced)"
else
    DY_MODE="in memory (no --path)"
fi

start edgeproxy $SERVER_CPU "$EDGEPROXY" -c "$TMP/edge/edge.yaml"
start dynalite $SERVER_CPU node "$DYNALITE_JS" "${dy_args[@]}"
wait_http edgeproxy "$EP_URL"
wait_http dynalite "$DY_URL"

# ---- load the same items into both (in parallel, the loaders on CPU 1), then check that both answer alike ----
log "loading $ITEMS items and $PARTS partitions of 10 into both servers"
taskset -c $LOAD_CPU node "$LOAD" load "$EP_URL" "$ITEMS" "$PARTS" "$PAYLOAD" >"$TMP/load-edgeproxy.log" 2>&1 &
load_ep=$!
taskset -c $LOAD_CPU node "$LOAD" load "$DY_URL" "$ITEMS" "$PARTS" "$PAYLOAD" >"$TMP/load-dynalite.log" 2>&1 &
load_dy=$!
wait $load_ep || { cat "$TMP/load-edgeproxy.log" >&2; die "loading edgeproxy failed"; }
wait $load_dy || { cat "$TMP/load-dynalite.log" >&2; die "loading dynalite failed"; }
cat "$TMP/load-edgeproxy.log" "$TMP/load-dynalite.log" >&2
node "$LOAD" verify "$EP_URL" "$DY_URL" "$ITEMS" "$PARTS" "$PAYLOAD" >&2 || die "the two servers do not answer alike"
if [ "$REST" = 1 ]; then
    node "$LOAD" rest "$EP_URL" "${EP_URL}rest" "$ITEMS" >&2 ||
        die "edgeproxy's REST route does not answer GetItem's items (REST=0 skips it)"
fi

# url_of SERVER OP; arg_of OP (ops.lua's operation)
url_of() {
    if [ "$2" = Rest ]; then echo "${EP_URL}rest"; elif [ "$1" = edgeproxy ]; then echo "$EP_URL"; else echo "$DY_URL"; fi
}
servers_of() { if [ "$1" = Rest ]; then echo edgeproxy; else echo edgeproxy dynalite; fi; }
ALL_OPS=$OPS
[ "$REST" = 1 ] && ALL_OPS+=" Rest"

# ---- a probe of every operation on every server: each answer looked at by ops.lua (status, and the body's shape) ----
for op in $ALL_OPS; do
    for s in $(servers_of "$op"); do
        out=$(taskset -c $LOAD_CPU wrk -t1 -c4 -d1s -s "$LUA" "$(url_of "$s" "$op")" -- "$op" "$ITEMS" "$PARTS" "$PAYLOAD" check 2>&1) ||
            die "wrk failed: $out"
        chk=$(grep '^CHECK ' <<<"$out") || die "no CHECK line from ops.lua: $out"
        [[ $chk =~ ok=([0-9]+)\ bad=([0-9]+) ]] || die "bad CHECK line: $chk"
        ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] == 0)) || die "$op on $s: bad answers: $chk"
        log "probe $op on $s: ${BASH_REMATCH[1]} good answers, none bad"
    done
done

# run SERVER OP SECONDS -> "REQ/S ERRORS CPU% P99_MS REQUESTS": one bounded wrk run; errors are non-2xx answers plus
# socket errors (connect, read, write, timeout), counted, not fatal
run() {
    local pid out rps non2xx sock p99 reqs c0 c1 t0 t1
    pid=$(pid_of "$1")
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    out=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${3}s" --latency -s "$LUA" "$(url_of "$1" "$2")" -- \
        "$2" "$ITEMS" "$PARTS" "$PAYLOAD" 2>&1) || die "wrk failed: $out"
    t1=$(now)
    c1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/$1.err" >&2; die "$1 exited during the $2 run"; }
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
    sock=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    [[ -n $rps && -n $p99 ]] || die "could not parse wrk's output: $out"
    [ "$((${non2xx:-0} + ${sock:-0}))" = 0 ] || echo "$out" >>"$TMP/errors.log"
    awk -v r="$rps" -v e=$((${non2xx:-0} + ${sock:-0})) -v c=$((c1 - c0)) -v t0="$t0" -v t1="$t1" \
        -v hz="$(getconf CLK_TCK)" -v p="$(to_ms "$p99")" -v n="${reqs:-0}" \
        'BEGIN { printf "%.0f %d %.0f %s %d\n", r, e, 100 * c / hz / (t1 - t0), p, n }'
}

declare -A RPS ERR CPU P99 REQS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
    for op in $ALL_OPS; do
        order=$(servers_of "$op")
        ((r % 2 == 0)) && [ "$op" != Rest ] && order="dynalite edgeproxy"
        for s in $order; do
            run "$s" "$op" "$WARMUP" >/dev/null
            res=$(run "$s" "$op" "$DURATION") || exit 1
            read -r rps errs cpu p99 reqs <<<"$res"
            log "round $r $op $s: $rps req/s, $errs errors of $reqs requests, CPU $cpu%, p99 ${p99} ms"
            RPS[$op-$s]+="$rps "
            CPU[$op-$s]+="$cpu "
            P99[$op-$s]+="$p99 "
            ERR[$op-$s]=$((${ERR[$op-$s]:-0} + errs))
            REQS[$op-$s]=$((${REQS[$op-$s]:-0} + reqs))
        done
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
[ -s "$TMP/errors.log" ] && { log "runs with errors (wrk's output):"; cat "$TMP/errors.log" >&2; }

fs=$(df -PT "$TMP" | awk 'NR == 2 { print $2 }')
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ] && commit+=" (plus uncommitted changes)"
name_of() {
    case $1 in
    Rest) echo "REST GET /rest/items/KEY (edgeproxy only)" ;;
    Query) echo "Query (a partition of 10, Limit 10)" ;;
    UpdateItem) echo "UpdateItem (ADD 1 to a counter)" ;;
    PutItem) echo "PutItem (~200-byte item)" ;;
    *) echo "$1" ;;
    esac
}

echo "#### Item store benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
echo
echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r); load average $load_start before the runs, $load_end after"
rest_route=""
[ "$REST" = 1 ] && rest_route=" and { store: rest } at /rest"
echo "- edgeproxy: $("$EDGEPROXY" --version 2>&1 | head -1), commit $commit; threads: 1, access log off, origin: { store: dynamodb } at /$rest_route; the store (LMDB) in $TMP ($fs)"
echo "- dynalite $DYNALITE_VERSION (npm, pinned in benchmarks/store/package-lock.json) on node $(node -v), $DY_MODE"
echo "- both servers on CPU $SERVER_CPU (taskset: every thread, edgeproxy's store writer and node's helper threads too), one under load at a time; the load generator on CPU $LOAD_CPU"
echo "- **durability differs**: every edgeproxy write (PutItem, UpdateItem) is answered after its batch is committed and fsync'ed (LMDB, group commit); dynalite $([ "$DYNALITE_DISK" = 1 ] && echo "writes LevelDB without syncing: what it acknowledges may not be on disk yet" || echo "keeps everything in memory: nothing it acknowledges is on disk"). The write rows compare a durable store with a non-durable one"
echo "- data: $ITEMS items (id S; name, n, count, and a $PAYLOAD-character payload: about 200 bytes as DynamoDB counts them) and $PARTS partitions of 10 items (pk S, sk N) in a second table, loaded with BatchWriteItem (25 per request) into both; before measuring, both answered the same GetItem, Query, UpdateItem and PutItem, and every operation was probed (each answer checked)"
echo "- load: wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }') -t1 -c$CONNS --latency -s benchmarks/store/ops.lua, the same requests in the same order on both servers (random keys from a fixed seed): GetItem, PutItem and UpdateItem on random keys of the $ITEMS, Query on a random partition; POST with X-Amz-Target, Content-Type application/x-amz-json-1.0, X-Amz-Date and a fixed SigV4 Authorization (neither server checks it)"
echo "- $ROUNDS rounds of ${DURATION}s per operation and server, interleaved (alternating which server goes first), each after a ${WARMUP}s warm-up; medians. Errors: non-2xx answers and socket errors, over all measured runs"
[ -n "$REST_NOTE" ] && echo "- $REST_NOTE"
echo
echo "| operation | edgeproxy req/s | dynalite req/s | edgeproxy / dynalite | goal >= ${GOAL}x | errors (edgeproxy / dynalite) | server CPU (edgeproxy / dynalite) | p99 ms (edgeproxy / dynalite) |"
echo "|---|---:|---:|---:|---|---|---|---|"
verdicts=()
for op in $ALL_OPS; do
    e=$(median_of "${RPS[$op-edgeproxy]}")
    ec=$(median_of "${CPU[$op-edgeproxy]}")
    ep=$(median_of "${P99[$op-edgeproxy]}")
    ee=${ERR[$op-edgeproxy]}
    if [ "$op" = Rest ]; then
        rel="n/a"
        [ -n "${RPS[GetItem-edgeproxy]:-}" ] &&
            rel=$(awk -v e="$e" -v g="$(median_of "${RPS[GetItem-edgeproxy]}")" 'BEGIN { printf "%.2fx its GetItem", e / g }')
        echo "| $(name_of "$op") | $e | n/a | $rel | n/a | $ee / - | $ec% / - | $ep / - |"
        [ "$ee" = 0 ] || verdicts+=("- $(name_of "$op"): **$ee errors** in ${REQS[$op-edgeproxy]} requests")
        continue
    fi
    d=$(median_of "${RPS[$op-dynalite]}")
    de=${ERR[$op-dynalite]}
    ratio=$(awk -v e="$e" -v d="$d" 'BEGIN { printf "%.1f", (d > 0) ? e / d : 0 }')
    if [ "$ee" != 0 ] || [ "$de" != 0 ]; then
        verdict="NO VERDICT: errors"
        verdicts+=("- $op: **runs with errors** (edgeproxy $ee in ${REQS[$op-edgeproxy]} requests, dynalite $de in ${REQS[$op-dynalite]}): the req/s count error answers too; wrk's output of those runs is on stderr")
    else
        verdict=$(awk -v r="$ratio" -v g="$GOAL" 'BEGIN { print (r >= g) ? "MET" : "NOT MET" }')
    fi
    verdicts+=("- $op: edgeproxy at ${ratio}x dynalite (goal >= ${GOAL}x): **$verdict**")
    echo "| $(name_of "$op") | $e | $d | ${ratio}x | **$verdict** | $ee / $de | $ec% / $(median_of "${CPU[$op-dynalite]}")% | $ep / $(median_of "${P99[$op-dynalite]}") |"
done
echo
printf '%s\n' "${verdicts[@]}"
echo
echo "Rounds (req/s):"
echo
echo "| operation | edgeproxy | dynalite |"
echo "|---|---|---|"
for op in $ALL_OPS; do
    echo "| $op | ${RPS[$op-edgeproxy]% } | $([ "$op" = Rest ] && echo - || echo "${RPS[$op-dynalite]% }") |"
done
