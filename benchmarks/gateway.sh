#!/usr/bin/env bash
# Gateway benchmark: the cost of an API key and its usage plan on cache hits. One edgeproxy, two caching routes on the
# same origin and object: /plain/ (no gateway stage) and /keyed/ (auth: api_key; the key's plan has a rate and a
# monthly quota, set high enough never to refuse, so every request pays for the key lookup, the token bucket and the
# quota counter). Both are measured in one run, interleaved, over HTTP/1.1 (wrk) and HTTP/2 over TLS (h2load).
# Goal (issue 4): /keyed/ hits at most 5% slower than /plain/ hits.
#
#   bash benchmarks/gateway.sh                 # ROUNDS=5 x DURATION=5 s per route and protocol, medians; ~2 minutes
#
# Environment: DURATION (5), WARMUP (1), ROUNDS (5), PROTOS ("h1 h2"), H1_CONNS (64), H2_CONNS (16), H2_STREAMS (32),
#   PORT_BASE (19800: 3 ports), EDGEPROXY (a binary; default: build the working tree, Release), KEEP_TMP=1.
# Layout: edgeproxy (1 worker thread) on CPU 0; the load generator and the origin (a second edgeproxy serving the
# 1 KiB object as a static file) on CPU 1; the origin is idle once both routes hold the object.
set -euo pipefail

BENCH=gateway
REPO=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
PROTOS=${PROTOS:-h1 h2}
H1_CONNS=${H1_CONNS:-64}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-32}
PORT_BASE=${PORT_BASE:-19800}
SERVER_CPU=0
LOAD_CPU=1
KEY=bench-key-0123456789abcdefghijklmnop

. "$REPO/benchmarks/lib.sh"
declare -A pkg_of=([wrk]=wrk [h2load]=nghttp2-client [curl]=curl [openssl]=openssl)
bench_tools
bench_build
bench_tmp edgeproxy-gateway-bench
bench_ports "$PORT_BASE" 3

ORIGIN_PORT=$PORT_BASE
H1_PORT=$((PORT_BASE + 1))
TLS_PORT=$((PORT_BASE + 2))

mkdir -p "$TMP/origin/pub/plain" "$TMP/origin/pub/keyed" "$TMP/edge"
head -c 1024 /dev/urandom >"$TMP/origin/pub/plain/1k.bin"
cp "$TMP/origin/pub/plain/1k.bin" "$TMP/origin/pub/keyed/1k.bin"
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
plans:
  bench: { rate: 1000000000/s, burst: 1000000000, quota: 1000000000000/month }
keys:
  - { name: bench, plan: bench, sha256: $(printf %s "$KEY" | sha256sum | cut -d' ' -f1) }
hosts:
  "*":
    routes:
      - path: /plain/
        origin: { url: "http://127.0.0.1:$ORIGIN_PORT/" }
        cache: { default_ttl: 1h, override: true }
      - path: /keyed/
        origin: { url: "http://127.0.0.1:$ORIGIN_PORT/" }
        cache: { default_ttl: 1h, override: true }
        auth: api_key
EOF
"$EDGEPROXY" -t -c "$TMP/edge/edge.yaml" >/dev/null 2>&1 || { "$EDGEPROXY" -t -c "$TMP/edge/edge.yaml"; die "bad conf"; }
start origin $LOAD_CPU "$EDGEPROXY" -c "$TMP/origin/edge.yaml"
start edge $SERVER_CPU "$EDGEPROXY" -c "$TMP/edge/edge.yaml"
wait_http origin "http://127.0.0.1:$ORIGIN_PORT/plain/1k.bin"
wait_http edge "http://127.0.0.1:$H1_PORT/plain/1k.bin"
for p in plain keyed; do # fill the cache, and check the key works
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "http://127.0.0.1:$H1_PORT/$p/1k.bin")
    [ "$code" = 200 ] || die "/$p/1k.bin answered $code"
done
for p in plain keyed; do # the https scheme keys its own cache entries
    curl -sk -o /dev/null -H "x-api-key: $KEY" "https://127.0.0.1:$TLS_PORT/$p/1k.bin"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$H1_PORT/keyed/1k.bin")
[ "$code" = 403 ] || die "/keyed/ without the key answered $code, not 403"

# run PROTO ROUTE SECONDS -> "RPS CPU%" (edgeproxy's CPU share of the run)
run() {
    local url="http://127.0.0.1:$H1_PORT/$2/1k.bin"
    [ "$1" = h2 ] && url="https://127.0.0.1:$TLS_PORT/$2/1k.bin"
    bench_load "$1" "$url" "$3" "$(pid_of edge)" "x-api-key: $KEY"
}


origin_before=$(wc -l <"$TMP/origin/access.jsonl")
declare -A RPS CPU
for proto in $PROTOS; do
    for r in $(seq "$ROUNDS"); do
        # alternate which route goes first, so that neither always runs on a warmer machine
        order="plain keyed"
        ((r % 2 == 0)) && order="keyed plain"
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

echo "#### Gateway benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
echo
echo "- $("$EDGEPROXY" --version 2>&1 | head -1) (commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)), 1 worker thread on CPU $SERVER_CPU; load generator on CPU $LOAD_CPU"
echo "- a 1 KiB object cached on both routes; /keyed/ needs x-api-key, whose plan has rate 1e9/s, burst 1e9 and a"
echo "  monthly quota of 1e12 (never refusing: every request pays for the key lookup, the bucket and the quota)"
echo "- $ROUNDS rounds of ${DURATION}s per route and protocol, interleaved (after a ${WARMUP}s warm-up each); medians"
echo "- HTTP/1.1: wrk -t1 -c$H1_CONNS; HTTP/2 over TLS 1.3 (AES-128-GCM): h2load -c$H2_CONNS -m$H2_STREAMS -t1"
echo "- origin requests during the measured runs: $((origin_after - origin_before)) (every answer was a hit)"
echo
echo "| protocol | route | req/s (median) | edgeproxy CPU | rounds (req/s) | keyed / plain |"
echo "|---|---|---:|---:|---|---:|"
verdicts=()
for proto in $PROTOS; do
    p=$(median_of "${RPS[$proto-plain]}")
    k=$(median_of "${RPS[$proto-keyed]}")
    ratio=$(awk -v k="$k" -v p="$p" 'BEGIN { printf "%.3f", k / p }')
    name=$([ "$proto" = h1 ] && echo "HTTP/1.1" || echo "HTTP/2+TLS")
    for route in plain keyed; do
        m=$(median_of "${RPS[$proto-$route]}")
        c=$(median_of "${CPU[$proto-$route]}")
        echo "| $name | /$route/ | $m | $c% | ${RPS[$proto-$route]% } | $([ "$route" = keyed ] && echo "${ratio}x" || echo "1.000x") |"
    done
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.95) ? "MET" : "NOT MET" }')
    verdicts+=("- $name: keyed hits at ${ratio}x of plain hits (goal >= 0.95x, at most 5% slower): **$verdict**")
done
echo
printf '%s\n' "${verdicts[@]}"
