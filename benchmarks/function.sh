#!/usr/bin/env bash
# Function benchmark: a hello-world Lua function as an origin, edgeproxy (origin: { function: ... }, the API Gateway
# proxy-integration event and answer) against nginx with Debian's lua-nginx-module (libnginx-mod-http-lua) running
# content_by_lua_block. Both answer GET /hello/NAME with {"hello":"NAME"} (application/json), one worker on CPU 0,
# the load generator on CPU 1 (HTTP/1.1: wrk; HTTP/2 over TLS: h2load, the same certificate and TLS 1.3 suite for
# both), interleaved rounds, medians. Goal (issue 5): edgeproxy >= 1.0x nginx.
#
#   bash benchmarks/function.sh                # ROUNDS=5 x DURATION=5 s per server and protocol; about 2 minutes
#
# Environment: DURATION (5), WARMUP (1), ROUNDS (5), PROTOS ("h1 h2"), H1_CONNS (64; wrk), H2_CONNS (16), H2_STREAMS (32),
#   PORT_BASE (19820: 4 ports), EDGEPROXY (a binary; default: build the working tree, Release), KEEP_TMP=1.
set -euo pipefail

BENCH=function
REPO=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
H1_CONNS=${H1_CONNS:-64}
PROTOS=${PROTOS:-h1 h2}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-32}
PORT_BASE=${PORT_BASE:-19820}
SERVER_CPU=0
LOAD_CPU=1

. "$REPO/benchmarks/lib.sh"
declare -A pkg_of=([wrk]=wrk [curl]=curl [nginx]=nginx-light [h2load]=nghttp2-client [openssl]=openssl)
bench_tools
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || {
    pkg_of=([lua-module]=libnginx-mod-http-lua)
    [ "$(id -u)" -eq 0 ] || die "missing package libnginx-mod-http-lua"
    log "installing libnginx-mod-http-lua"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnginx-mod-http-lua >/dev/null ||
        die "could not install libnginx-mod-http-lua"
    if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
}
bench_build
bench_tmp edgeproxy-function-bench
bench_ports "$PORT_BASE" 4
EP_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))
EP_TLS=$((PORT_BASE + 2))
NGINX_TLS=$((PORT_BASE + 3))

mkdir -p "$TMP/edge/fn" "$TMP/nginx/logs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"
cat >"$TMP/edge/fn/hello.lua" <<'LUA'
function handler(event, context)
  return { statusCode = 200, headers = { ["content-type"] = "application/json" },
           body = '{"hello":"' .. event.pathParameters.name .. '"}' }
end
LUA
cat >"$TMP/edge/edge.yaml" <<YAML
threads: 1
listen:
  - { address: 127.0.0.1, port: $EP_PORT }
  - { address: 127.0.0.1, port: $EP_TLS, tls: { cert: $TMP/cert.pem, key: $TMP/key.pem } }
access_log: { enabled: false }
hosts:
  "*":
    routes:
      - { path: "/hello/{name}", origin: { function: fn/hello.lua } }
YAML
cat >"$TMP/nginx/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    ssl_certificate $TMP/cert.pem;
    ssl_certificate_key $TMP/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /hello/ {
      content_by_lua_block {
        local name = ngx.var.uri:sub(8)
        ngx.header.content_type = "application/json"
        ngx.print('{"hello":"' .. name .. '"}')
      }
    }
  }
}
NGINX
start edgeproxy $SERVER_CPU "$EDGEPROXY" -c "$TMP/edge/edge.yaml"
start nginx $SERVER_CPU nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
# url_of SERVER [PROTO]
url_of() {
    if [ "${2:-h1}" = h2 ]; then
        [ "$1" = edgeproxy ] && echo "https://127.0.0.1:$EP_TLS/hello/world" || echo "https://127.0.0.1:$NGINX_TLS/hello/world"
    else
        [ "$1" = edgeproxy ] && echo "http://127.0.0.1:$EP_PORT/hello/world" || echo "http://127.0.0.1:$NGINX_PORT/hello/world"
    fi
}
for s in edgeproxy nginx; do
    wait_http "$s" "$(url_of $s)"
    body=$(curl -s "$(url_of $s)")
    [ "$body" = '{"hello":"world"}' ] || die "$s answered '$body'"
    body=$(curl -sk --http2 "$(url_of $s h2)")
    [ "$body" = '{"hello":"world"}' ] || die "$s answered '$body' over TLS"
done

# run SERVER PROTO SECONDS -> "RPS CPU%"
run() {
    bench_load "$2" "$(url_of "$1" "$2")" "$3" "$(pid_of "$1")"
}

declare -A RPS CPU
for proto in $PROTOS; do
    for r in $(seq "$ROUNDS"); do
        order="edgeproxy nginx"
        ((r % 2 == 0)) && order="nginx edgeproxy"
        for s in $order; do
            run "$s" "$proto" "$WARMUP" >/dev/null
            read -r rps cpu < <(run "$s" "$proto" "$DURATION")
            log "$proto $s round $r: $rps req/s, CPU $cpu%"
            RPS[$proto-$s]+="$rps "
            CPU[$proto-$s]+="$cpu "
        done
    done
done

echo "#### Function benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
echo
echo "- $("$EDGEPROXY" --version 2>&1 | head -1) (threads: 1, Lua $(pkg-config --modversion lua5.4 2>/dev/null || echo 5.4)) vs $(nginx -v 2>&1 | sed 's/^nginx version: //') with lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null) (worker_processes 1), both on CPU $SERVER_CPU"
echo "- GET /hello/world -> {\"hello\":\"world\"}; HTTP/1.1: wrk -t1 -c$H1_CONNS; HTTP/2 over TLS 1.3 (AES-128-GCM, one ECDSA P-256 certificate): h2load -c$H2_CONNS -m$H2_STREAMS -t1; load on CPU $LOAD_CPU"
echo "- $ROUNDS rounds of ${DURATION}s per server and protocol, interleaved, after a ${WARMUP}s warm-up each; medians"
echo
echo "| protocol | server | req/s (median) | server CPU | rounds (req/s) | edgeproxy / this |"
echo "|---|---|---:|---:|---|---:|"
verdicts=()
for proto in $PROTOS; do
    name=$([ "$proto" = h1 ] && echo "HTTP/1.1" || echo "HTTP/2+TLS")
    e=$(median_of "${RPS[$proto-edgeproxy]}")
    for s in edgeproxy nginx; do
        m=$(median_of "${RPS[$proto-$s]}")
        echo "| $name | $s | $m | $(median_of "${CPU[$proto-$s]}")% | ${RPS[$proto-$s]% } | $(awk -v e="$e" -v m="$m" 'BEGIN { printf "%.2fx", e / m }') |"
    done
    n=$(median_of "${RPS[$proto-nginx]}")
    verdicts+=("$(awk -v e="$e" -v n="$n" -v p="$name" 'BEGIN { r = e / n; printf "- %s: edgeproxy at %.2fx of nginx + lua-nginx-module (goal >= 1.0x): **%s**", p, r, (r >= 1.0) ? "MET" : "NOT MET" }')")
done
echo
printf '%s\n' "${verdicts[@]}"
