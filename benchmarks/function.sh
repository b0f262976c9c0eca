#!/usr/bin/env bash
# Function benchmark: a hello-world Lua function as an origin, edgeproxy (origin: { function: ... }, the API Gateway
# proxy-integration event and answer) against nginx with Debian's lua-nginx-module (libnginx-mod-http-lua) running
# content_by_lua_block. Both answer GET /hello/NAME with {"hello":"NAME"} (application/json), one worker on CPU 0,
# wrk on CPU 1, interleaved rounds, medians. Goal (issue 5): edgeproxy >= 1.0x nginx.
#
#   bash benchmarks/function.sh                # ROUNDS=5 x DURATION=5 s per server; about 1 minute
#
# Environment: DURATION (5), WARMUP (1), ROUNDS (5), CONNS (64), PORT_BASE (19820: 2 ports), EDGEPROXY (a binary;
#   default: build the working tree, Release), KEEP_TMP=1.
set -euo pipefail

BENCH=function
REPO=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-19820}
SERVER_CPU=0
LOAD_CPU=1

. "$REPO/benchmarks/lib.sh"
declare -A pkg_of=([wrk]=wrk [curl]=curl [nginx]=nginx-light)
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
bench_ports "$PORT_BASE" 2
EP_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))

mkdir -p "$TMP/edge/fn" "$TMP/nginx/logs"
cat >"$TMP/edge/fn/hello.lua" <<'LUA'
function handler(event, context)
  return { statusCode = 200, headers = { ["content-type"] = "application/json" },
           body = '{"hello":"' .. event.pathParameters.name .. '"}' }
end
LUA
cat >"$TMP/edge/edge.yaml" <<YAML
threads: 1
listen: [{ address: 127.0.0.1, port: $EP_PORT }]
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
  server {
    listen 127.0.0.1:$NGINX_PORT;
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
url_of() { [ "$1" = edgeproxy ] && echo "http://127.0.0.1:$EP_PORT/hello/world" || echo "http://127.0.0.1:$NGINX_PORT/hello/world"; }
for s in edgeproxy nginx; do
    wait_http "$s" "$(url_of $s)"
    body=$(curl -s "$(url_of $s)")
    [ "$body" = '{"hello":"world"}' ] || die "$s answered '$body'"
done

# run SERVER SECONDS -> "RPS CPU%"
run() {
    local s=$1 secs=$2 out rps c0 c1 t0 t1 pid
    pid=$(pid_of "$s")
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    out=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${secs}s" "$(url_of "$s")" 2>&1) || die "wrk failed: $out"
    t1=$(now)
    c1=$(cpu_ticks "$pid")
    grep -q 'Non-2xx' <<<"$out" && die "$s answered non-2xx: $out"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    [ -n "$rps" ] || die "could not parse wrk's output: $out"
    awk -v r="$rps" -v c=$((c1 - c0)) -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.0f\n", r, 100 * c / hz / (t1 - t0) }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A RPS CPU
for r in $(seq "$ROUNDS"); do
    order="edgeproxy nginx"
    ((r % 2 == 0)) && order="nginx edgeproxy"
    for s in $order; do
        run "$s" "$WARMUP" >/dev/null
        read -r rps cpu < <(run "$s" "$DURATION")
        log "$s round $r: $rps req/s, CPU $cpu%"
        RPS[$s]+="$rps "
        CPU[$s]+="$cpu "
    done
done

echo "#### Function benchmark, $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
echo
echo "- $("$EDGEPROXY" --version 2>&1 | head -1) (threads: 1, Lua $(pkg-config --modversion lua5.4 2>/dev/null || echo 5.4)) vs $(nginx -v 2>&1 | sed 's/^nginx version: //') with lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null) (worker_processes 1), both on CPU $SERVER_CPU"
echo "- GET /hello/world -> {\"hello\":\"world\"}; wrk -t1 -c$CONNS on CPU $LOAD_CPU; $ROUNDS rounds of ${DURATION}s, interleaved, after a ${WARMUP}s warm-up each; medians"
echo
echo "| server | req/s (median) | server CPU | rounds (req/s) | edgeproxy / this |"
echo "|---|---:|---:|---|---:|"
e=$(tr ' ' '\n' <<<"${RPS[edgeproxy]}" | sed '/^$/d' | median)
for s in edgeproxy nginx; do
    m=$(tr ' ' '\n' <<<"${RPS[$s]}" | sed '/^$/d' | median)
    c=$(tr ' ' '\n' <<<"${CPU[$s]}" | sed '/^$/d' | median)
    echo "| $s | $m | $c% | ${RPS[$s]% } | $(awk -v e="$e" -v m="$m" 'BEGIN { printf "%.2fx", e / m }') |"
done
n=$(tr ' ' '\n' <<<"${RPS[nginx]}" | sed '/^$/d' | median)
echo
awk -v e="$e" -v n="$n" 'BEGIN { r = e / n; printf "- edgeproxy at %.2fx of nginx + lua-nginx-module (goal >= 1.0x): **%s**\n", r, (r >= 1.0) ? "MET" : "NOT MET" }'
