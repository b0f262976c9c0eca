#!/usr/bin/env bash
# Hooks benchmark: the cost of a trivial Lua request hook on cache hits. One edgeproxy, two caching routes on the
# same origin and object: /plain/ (no hook) and /hooked/ (hooks: { request: trivial.lua }, whose on_request(req) reads
# req.method and changes nothing, so every request pays for a Lua run: its coroutine, the req object, one field).
# Both are measured in one run, interleaved, over HTTP/1.1 (wrk) and HTTP/2 over TLS (h2load).
# Goal (issue 5): /hooked/ hits at most 10% slower than /plain/ hits.
#
#   bash benchmarks/hooks.sh                   # ROUNDS=5 x DURATION=5 s per route and protocol, medians; ~2 minutes
#
# Environment: DURATION (5), WARMUP (1), ROUNDS (5), PROTOS ("h1 h2"), H1_CONNS (64), H2_CONNS (16), H2_STREAMS (32),
#   PORT_BASE (19840: 3 ports), EDGEPROXY (a binary; default: build the working tree, Release), KEEP_TMP=1.
# Layout: edgeproxy (1 worker thread) on CPU 0; the load generator and the origin (a second edgeproxy serving the
# 1 KiB object as a static file) on CPU 1; the origin is idle once both routes hold the object.
set -euo pipefail

BENCH=hooks
REPO=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
PROTOS=${PROTOS:-h1 h2}
H1_CONNS=${H1_CONNS:-64}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-32}
PORT_BASE=${PORT_BASE:-19840}
SERVER_CPU=0
LOAD_CPU=1

. "$REPO/benchmarks/lib.sh"
declare -A pkg_of=([wrk]=wrk [h2load]=nghttp2-client [curl]=curl [openssl]=openssl)
bench_tools
bench_build
bench_tmp edgeproxy-hooks-bench
bench_ports "$PORT_BASE" 3

ORIGIN_PORT=$PORT_BASE
H1_PORT=$((PORT_BASE + 1))
TLS_PORT=$((PORT_BASE + 2))

mkdir -p "$TMP/origin/pub/plain" "$TMP/origin/pub/hooked" "$TMP/edge/lua"
head -c 1024 /dev/urandom >"$TMP/origin/pub/plain/1k.bin"
cp "$TMP/origin/pub/plain/1k.bin" "$TMP/origin/pub/hooked/1k.bin"
cat >"$TMP/edge/lua/trivial.lua" <<'EOF'
function on_request(req)
  if req.method == "DELETE" then return edge.respond(405) end
end
EOF
cat >"$TMP/origin/edge.yaml" <<EOF
threads: 1
listen: [{ address: 127.0.0.1, port: $ORIGIN_PORT }]
access_log: { path: access.jsonl }
hosts:
  "*":
    routes:
      - { path: /, origin: { static: pub } }
EOF
cat >"$TMP/edge/edge.yaml" <<EOF
threads: 1
listen:
  - { address: 127.0.0.1, port: $H1_PORT }
  - { address: 127.0.0.1, port: $TLS_PORT, tls: {} }
access_log: { enabled: false }
cache: { max_size: 64MiB }
lua: { dir: lua }
hosts:
  "*":
    routes:
      - path: /plain/
        origin: { url: "http://127.0.0.1:$ORIGIN_PORT/" }
        cache: { default_ttl: 1h, override: true }
      - path: /hooked/
        origin: { url: "http://127.0.0.1:$ORIGIN_PORT/" }
        cache: { default_ttl: 1h, override: true }
        hooks: { request: lua/trivial.lua }
EOF
"$EDGEPROXY" -t -c "$TMP/edge/edge.yaml" >/dev/null 2>&1 || { "$EDGEPROXY" -t -c "$TMP/edge/edge.yaml"; die "bad conf"; }
start origin $LOAD_CPU "$EDGEPROXY" -c "$TMP/origin/edge.yaml"
start edge $SERVER_CPU "$EDGEPROXY" -c "$TMP/edge/edge.yaml"
wait_http origin "http://127.0.0.1:$ORIGIN_PORT/plain/1k.bin"
wait_http edge "http://127.0.0.1:$H1_PORT/plain/1k.bin"
for p in plain hooked; do # fill the cache
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$H1_PORT/$p/1k.bin")
    [ "$code" = 200 ] || die "/$p/1k.bin answered $code"
done
for p in plain hooked; do # the https scheme keys its own cache entries
    curl -sk -o /dev/null "https://127.0.0.1:$TLS_PORT/$p/1k.bin"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$H1_PORT/hooked/1k.bin")
[ "$code" = 405 ] || die "DELETE /hooked/ answered $code, not the hook's 405"

# run PROTO ROUTE SECONDS -> "RPS CPU%" (edgeproxy's CPU share of the run)
run() {
    local url="http://127.0.0.1:$H1_PORT/$2/1k.bin"
    [ "$1" = h2 ] && url="https://127.0.0.1:$TLS_PORT/$2/1k.bin"
    bench_load "$1" "$url" "$3" "$(pid_of edge)"
}


origin_before=$(wc -l <"$TMP/origin/access.jsonl")
declare -A RPS CPU
for proto in $PROTOS; do
    for r in $(seq "$ROUNDS"); do
        # alternate which route goes first, so that neither always runs on a warmer machine
        order="plain hooked"
        ((r % 2 == 0)) && order="hooked plain"
        for route in $order; do
            run "$proto" "$route" "$WARMUP" >/dev/null
            read -r rps cpu < <(run "$proto" "$route" "$DURATION")
            log "$proto /$route/ round $r: $rps req/s, edgeproxy CPU $cpu%"
            RPS[$proto-$route]+="$rps "
            CPU[$proto-$route]+="$cpu "
        done
    done
done
origin_after=$(wc -l <"$TMP/origin/access.jsonl")

echo "#### Hooks benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
echo
echo "- $("$EDGEPROXY" --version 2>&1 | head -1) (commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)), 1 worker thread on CPU $SERVER_CPU; load generator on CPU $LOAD_CPU"
echo "- a 1 KiB object cached on both routes; /hooked/ runs on_request(req), which reads req.method and changes nothing"
echo "- $ROUNDS rounds of ${DURATION}s per route and protocol, interleaved (after a ${WARMUP}s warm-up each); medians"
echo "- HTTP/1.1: wrk -t1 -c$H1_CONNS; HTTP/2 over TLS 1.3 (AES-128-GCM): h2load -c$H2_CONNS -m$H2_STREAMS -t1"
echo "- origin requests during the measured runs: $((origin_after - origin_before)) (every answer was a hit)"
echo
echo "| protocol | route | req/s (median) | edgeproxy CPU | rounds (req/s) | hooked / plain |"
echo "|---|---|---:|---:|---|---:|"
verdicts=()
for proto in $PROTOS; do
    p=$(median_of "${RPS[$proto-plain]}")
    k=$(median_of "${RPS[$proto-hooked]}")
    ratio=$(awk -v k="$k" -v p="$p" 'BEGIN { printf "%.3f", k / p }')
    name=$([ "$proto" = h1 ] && echo "HTTP/1.1" || echo "HTTP/2+TLS")
    for route in plain hooked; do
        m=$(median_of "${RPS[$proto-$route]}")
        c=$(median_of "${CPU[$proto-$route]}")
        echo "| $name | /$route/ | $m | $c% | ${RPS[$proto-$route]% } | $([ "$route" = hooked ] && echo "${ratio}x" || echo "1.000x") |"
    done
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.90) ? "MET" : "NOT MET" }')
    verdicts+=("- $name: hooked hits at ${ratio}x of plain hits (goal >= 0.90x, at most 10% slower): **$verdict**")
done
echo
printf '%s\n' "${verdicts[@]}"
