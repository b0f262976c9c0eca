#!/usr/bin/env bash
# Cache benchmark: edgeproxy's cache HITS vs nginx proxy_cache, Varnish and h2o serving the same bytes as static files
# (the practical limit), for 1 KiB, 16 KiB and 256 KiB objects over HTTP/1.1, HTTP/1.1 + TLS and HTTP/2 + TLS; plus a
# MISS run (every request a new URL) of edgeproxy against h2o as a plain proxy.
#
#   bash benchmarks/cache.sh                          # ROUNDS=3 x DURATION=5 s, medians; about 14 minutes
#   SIZES="1k 16k" PROTOS=h2 ROUNDS=1 bash benchmarks/cache.sh
#
# Environment:
#   DURATION    seconds of each measured run (default 5)
#   WARMUP      seconds of the warm-up run before each measured run (default 1)
#   ROUNDS      measured rounds, interleaved over the servers; medians are reported (default 3)
#   SIZES       object sizes among 1k 16k 256k (default all three)
#   PROTOS      hit protocols among h1 (HTTP/1.1 plain), h1tls (HTTP/1.1 over TLS), h2 (HTTP/2 over TLS) (default all)
#   MISS_PROTOS protocols of the miss run among h1 h1tls h2, or "none" (default "h1 h2"); MISS_SIZE (default 1k)
#   H1_CONNS    wrk connections (default 64); H2_CONNS, H2_STREAMS: h2load connections and streams each (16, 32)
#   CACHE_MAX_SIZE  edgeproxy's cache.max_size (default 4GiB: the default miss run stores ~0.5-1 GB, no eviction)
#   PROFILE     auto (default: if a goal is missed, perf profiles of edgeproxy during an HTTP/1.1 1 KiB hit run, and
#               during an HTTP/1.1 miss run if a miss goal is missed), 1 (both, always), 0 (never)
#   PORT_BASE   first of 13 consecutive loopback ports to use (default 19700)
#   EDGEPROXY   edgeproxy binary; default: build the working tree into build-bench/ (Release) and use that
#               (EDGEPROXY_LABEL: what to call it in the report, e.g. the commit it was built from)
#   TLS13_CIPHERS  the TLS 1.3 suite the clients offer (default TLS_AES_128_GCM_SHA256, the same crypto for all)
#   KEEP_TMP=1  keep the temporary directory (confs, logs, raw outputs)
#
# Layout: the server under test on CPU 0 (taskset -c 0), the load generator (wrk / h2load) on CPU 1, the origin (an
# nginx serving the objects with Cache-Control: max-age=3600) on CPU 1 too: it is idle during the hit runs. One server
# under load at a time; every server has one worker thread/process (Varnish: one thread pool; it uses a thread per
# connection by design, all of its threads pinned to CPU 0).
set -euo pipefail

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-1k 16k 256k}
PROTOS=${PROTOS:-h1 h1tls h2}
MISS_PROTOS=${MISS_PROTOS:-h1 h2}
MISS_SIZE=${MISS_SIZE:-1k}
H1_CONNS=${H1_CONNS:-64}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-32}
CACHE_MAX_SIZE=${CACHE_MAX_SIZE:-4GiB}
PROFILE=${PROFILE:-auto}
PORT_BASE=${PORT_BASE:-19700}
TLS13_CIPHERS=${TLS13_CIPHERS:-TLS_AES_128_GCM_SHA256}
SERVER_CPU=0
LOAD_CPU=1
[ "$MISS_PROTOS" = none ] && MISS_PROTOS=

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T_START=$(date +%s)

BENCH=cache.sh
# shellcheck source=benchmarks/lib.sh
. "$REPO/benchmarks/lib.sh"

for s in $SIZES; do case $s in 1k | 16k | 256k) ;; *) die "SIZES: unknown size '$s' (1k 16k 256k)" ;; esac; done
for p in $PROTOS $MISS_PROTOS; do case $p in h1 | h1tls | h2) ;; *) die "PROTOS/MISS_PROTOS: unknown '$p' (h1 h1tls h2)" ;; esac; done
case $MISS_SIZE in 1k | 16k | 256k) ;; *) die "MISS_SIZE: one of 1k 16k 256k" ;; esac
[ -n "$SIZES" ] && [ -n "$PROTOS" ] || die "SIZES and PROTOS must not be empty"

# ---------------------------------------------------------------- tools
# the Debian package of each tool; missing ones are installed when running as root
declare -A pkg_of=([nginx]=nginx-light [h2o]=h2o [wrk]=wrk [h2load]=nghttp2-client [openssl]=openssl [curl]=curl
    [taskset]=util-linux [setsid]=util-linux [awk]=mawk [sort]=coreutils [varnishd]=varnish [hitch]=hitch)
bench_tools
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (servers on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU)"
nginx -V 2>&1 | grep -q -- --with-http_v2_module || die "this nginx lacks the http_v2 module (install nginx-light or nginx)"
nginx -V 2>&1 | grep -q -- --with-http_stub_status_module || die "this nginx lacks the stub_status module (nginx-light has it)"
if [ "$PROFILE" != 0 ] && ! command -v perf >/dev/null 2>&1; then
    log "perf is not installed: no profile (apt-get install linux-perf)"
    PROFILE=0
fi

# ---------------------------------------------------------------- edgeproxy binary
if [ -z "${EDGEPROXY:-}" ]; then
    EDGEPROXY_LABEL=${EDGEPROXY_LABEL:-commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        git -C "$REPO" diff --quiet HEAD -- . ':!benchmarks' 2>/dev/null || echo ' (working tree has changes)')}
fi
bench_build
EDGEPROXY_LABEL=${EDGEPROXY_LABEL:-$EDGEPROXY}

# ---------------------------------------------------------------- time estimate
n_sizes=$(wc -w <<<"$SIZES"); n_protos=$(wc -w <<<"$PROTOS"); n_miss=$(wc -w <<<"$MISS_PROTOS")
N_HIT_RUNS=$((ROUNDS * n_protos * n_sizes * 4))
N_MISS_RUNS=$((ROUNDS * n_miss * 2))
EST=$(awk -v h="$N_HIT_RUNS" -v m="$N_MISS_RUNS" -v w="$WARMUP" -v d="$DURATION" -v p="$PROFILE" \
    'BEGIN { printf "%d", h * (w + d + 0.4) + m * (w + d + 1.5) + 25 + (p != "0" ? 2 * (w + d + 5) : 0) }')
log "estimate: $N_HIT_RUNS hit runs + $N_MISS_RUNS miss runs of ${WARMUP}s warm-up + ${DURATION}s, about $((EST / 60)) min $((EST % 60)) s"

# ---------------------------------------------------------------- temp dir, ports, cleanup
bench_tmp edgeproxy-cache-bench
chmod 755 "$TMP" # nginx's workers (nobody) and Varnish's (vcache) must reach their files

P_ORIGIN=$PORT_BASE
P_EDGE=$((PORT_BASE + 1)); P_EDGE_TLS=$((PORT_BASE + 2))
P_NGINX=$((PORT_BASE + 3)); P_NGINX_TLS=$((PORT_BASE + 4))
P_VARNISH=$((PORT_BASE + 5)); P_HITCH=$((PORT_BASE + 6)); P_VARNISH_PROXY=$((PORT_BASE + 7)); P_VARNISH_ADM=$((PORT_BASE + 8))
P_FILE=$((PORT_BASE + 9)); P_FILE_TLS=$((PORT_BASE + 10))
P_H2OP=$((PORT_BASE + 11)); P_H2OP_TLS=$((PORT_BASE + 12))
bench_ports "$PORT_BASE" 13

# ---------------------------------------------------------------- shared inputs: certificate, objects, client TLS conf
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    die "openssl could not generate the self-signed certificate"
cat "$TMP/key.pem" "$TMP/cert.pem" >"$TMP/hitch.pem"
mkdir -p "$TMP/www/obj"
declare -A BYTES_OF=([1k]=1024 [16k]=16384 [256k]=262144)
declare -A LABEL_OF=([1k]="1 KiB" [16k]="16 KiB" [256k]="256 KiB")
for s in 1k 16k 256k; do head -c "${BYTES_OF[$s]}" /dev/urandom >"$TMP/www/obj/$s.bin"; done
chmod -R a+rX "$TMP/www"
# wrk has no option for TLS suites: its OpenSSL reads them from this configuration (OPENSSL_CONF), like h2load's flag
cat >"$TMP/client-openssl.cnf" <<EOF
openssl_conf = client_init
[client_init]
ssl_conf = client_ssl
[client_ssl]
system_default = client_tls
[client_tls]
MinProtocol = TLSv1.2
Ciphersuites = $TLS13_CIPHERS
EOF
# the miss run's wrk script: every request a new path (PREFIX followed by a counter)
cat >"$TMP/miss.lua" <<'EOF'
local prefix, n = "/", 0
function init(args) prefix = args[1] end
function request()
    n = n + 1
    return wrk.format("GET", prefix .. n)
end
EOF


# ---------------------------------------------------------------- origin: nginx serving the objects, CPU 1
mkdir -p "$TMP/origin"
cat >"$TMP/origin/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    sendfile on;
    types { application/octet-stream bin; }
    server {
        listen 127.0.0.1:$P_ORIGIN backlog=4096;
        root $TMP/www;
        location / { add_header Cache-Control "max-age=3600"; }
        location = /origin-status { stub_status; }   # its "requests" count proves hits are hits
    }
}
EOF
ORIGIN_CMD="nginx -p $TMP/origin -e $TMP/origin/error.log -c $TMP/origin/nginx.conf -g 'daemon off;'"
start origin "$LOAD_CPU" nginx -p "$TMP/origin" -e "$TMP/origin/error.log" -c "$TMP/origin/nginx.conf" -g 'daemon off;'
wait_http origin "http://127.0.0.1:$P_ORIGIN/obj/1k.bin"
# origin_count: sets O_REQ to the number of requests the origin has had, not counting the status requests themselves
# (stub_status counts every request, its own included)
STATUS_READS=0
origin_count() {
    local c
    STATUS_READS=$((STATUS_READS + 1))
    c=$(curl -s --max-time 5 "http://127.0.0.1:$P_ORIGIN/origin-status" | awk 'NR == 3 { print $3 }')
    [ -n "$c" ] || die "could not read the origin's stub_status"
    O_REQ=$((c - STATUS_READS))
}

# ---------------------------------------------------------------- edgeproxy with the cache, CPU 0
mkdir -p "$TMP/edgeproxy/data"
cat >"$TMP/edgeproxy/edge.yaml" <<EOF
threads: 1
data_dir: $TMP/edgeproxy/data
listen:
  - { address: 127.0.0.1, port: $P_EDGE }
  - { address: 127.0.0.1, port: $P_EDGE_TLS, tls: { cert: $TMP/cert.pem, key: $TMP/key.pem } }
access_log:
  enabled: false
cache:
  path: $TMP/edgeproxy/cache
  max_size: $CACHE_MAX_SIZE
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "http://127.0.0.1:$P_ORIGIN" }
        cache: {}
EOF
EDGE_CMD="$EDGEPROXY -c $TMP/edgeproxy/edge.yaml"
start edgeproxy "$SERVER_CPU" "$EDGEPROXY" -c "$TMP/edgeproxy/edge.yaml"
for _ in $(seq 100); do grep -q 'edgeproxy: ready' "$TMP/edgeproxy.err" 2>/dev/null && break; sleep 0.1; done
grep -q 'edgeproxy: ready' "$TMP/edgeproxy.err" || { cat "$TMP/edgeproxy.err" >&2; die "edgeproxy did not print 'edgeproxy: ready'"; }

# ---------------------------------------------------------------- nginx with proxy_cache, CPU 0
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;   # do not close client connections (HTTP/1.1 and HTTP/2) every 1000 requests
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=edge:32m max_size=4g inactive=1h use_temp_path=off;
    upstream origin {
        server 127.0.0.1:$P_ORIGIN;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$P_NGINX backlog=4096;
        listen 127.0.0.1:$P_NGINX_TLS ssl http2 backlog=4096;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;   # nginx 1.22's default leaves TLSv1.3 out
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;            # freshness from the origin's Cache-Control
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
NGINX_CMD="nginx -p $TMP/nginx -e $TMP/nginx/error.log -c $TMP/nginx/nginx.conf -g 'daemon off;'"
start nginx "$SERVER_CPU" nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'

# ---------------------------------------------------------------- Varnish (plain HTTP and PROXY for hitch), CPU 0
# thread_pools=1: one pool (Varnish's analogue of one worker); its threads (one per active connection, and per
# HTTP/2 stream) all run on CPU 0 through taskset. The default VCL honours the origin's Cache-Control.
mkdir -p "$TMP/varnish"
# shellcheck disable=SC2054 # the commas belong to -a PROTO
VARNISH_ARGS=(-F -n "$TMP/varnish/work" -a "127.0.0.1:$P_VARNISH" -a "127.0.0.1:$P_VARNISH_PROXY,PROXY"
    -b "127.0.0.1:$P_ORIGIN" -s malloc,256m -T "127.0.0.1:$P_VARNISH_ADM"
    -p thread_pools=1 -p thread_pool_min=100 -p thread_pool_max=1000 -p feature=+http2)
VARNISH_CMD="varnishd ${VARNISH_ARGS[*]}"
start varnish "$SERVER_CPU" varnishd "${VARNISH_ARGS[@]}"

# ---------------------------------------------------------------- hitch: TLS in front of Varnish, CPU 0
mkdir -p "$TMP/hitch/ocsp"
cat >"$TMP/hitch/hitch.conf" <<EOF
frontend = "[127.0.0.1]:$P_HITCH"
backend = "[127.0.0.1]:$P_VARNISH_PROXY"
pem-file = "$TMP/hitch.pem"
workers = 1
backlog = 4096
daemon = off
write-proxy-v2 = on
alpn-protos = "h2, http/1.1"
tls-protos = TLSv1.2 TLSv1.3
ocsp-dir = "$TMP/hitch/ocsp"
EOF
# hitch refuses to run its workers as root: as root, they run as the package's user (or nobody)
if [ "$(id -u)" -eq 0 ]; then
    echo "user = \"$(getent passwd _hitch >/dev/null && echo _hitch || echo nobody)\"" >>"$TMP/hitch/hitch.conf"
fi
HITCH_CMD="hitch --config=$TMP/hitch/hitch.conf"
start hitch "$SERVER_CPU" hitch --config="$TMP/hitch/hitch.conf"

# ---------------------------------------------------------------- h2o: static files (h2o-file) and plain proxy (h2o-proxy), CPU 0
h2o_conf() { # h2o_conf NAME PORT TLS_PORT PATH_DIRECTIVES
    mkdir -p "$TMP/$1"
    cat >"$TMP/$1/h2o.conf" <<EOF
num-threads: 1
user: $(id -un)
pid-file: $TMP/$1/h2o.pid
error-log: $TMP/$1/error.log
# no access-log directive: h2o writes no access log
listen:
  host: 127.0.0.1
  port: $2
listen:
  host: 127.0.0.1
  port: $3
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
$4
EOF
}
h2o_conf h2o-file "$P_FILE" "$P_FILE_TLS" "        file.dir: $TMP/www
        header.add: \"cache-control: max-age=3600\"   # the origin's header, so the responses are alike"
h2o_conf h2o-proxy "$P_H2OP" "$P_H2OP_TLS" "        proxy.reverse.url: http://127.0.0.1:$P_ORIGIN/"
H2O_FILE_CMD="h2o -c $TMP/h2o-file/h2o.conf"
H2O_PROXY_CMD="h2o -c $TMP/h2o-proxy/h2o.conf"
start h2o-file "$SERVER_CPU" h2o -c "$TMP/h2o-file/h2o.conf"
start h2o-proxy "$SERVER_CPU" h2o -c "$TMP/h2o-proxy/h2o.conf"

HIT_SERVERS=(edgeproxy h2o-file varnish nginx)
declare -A PLAIN_PORT=([edgeproxy]=$P_EDGE [h2o-file]=$P_FILE [varnish]=$P_VARNISH [nginx]=$P_NGINX [h2o-proxy]=$P_H2OP)
declare -A TLS_PORT=([edgeproxy]=$P_EDGE_TLS [h2o-file]=$P_FILE_TLS [varnish]=$P_HITCH [nginx]=$P_NGINX_TLS [h2o-proxy]=$P_H2OP_TLS)
# url SERVER PROTO PATH
url() {
    if [ "$2" = h1 ]; then echo "http://127.0.0.1:${PLAIN_PORT[$1]}$3"; else echo "https://127.0.0.1:${TLS_PORT[$1]}$3"; fi
}
# the processes whose CPU time counts for SERVER PROTO (Varnish over TLS: Varnish and hitch)
pids_of() {
    if [ "$1" = varnish ] && [ "$2" != h1 ]; then echo "$(pid_of varnish) $(pid_of hitch)"; else pid_of "$1"; fi
}
for s in "${HIT_SERVERS[@]}" h2o-proxy; do
    wait_http "$s" "$(url "$s" h1 /obj/1k.bin)"
    wait_http "$s" "$(url "$s" h2 /obj/1k.bin)"
done
# hitch's own process, for the report's CPU accounting: it has no separate liveness check beyond the URL above
kill -0 "$(pid_of hitch)" 2>/dev/null || die "hitch is not running"

# ---------------------------------------------------------------- warm the caches and check every answer
# fetch SERVER PROTO PATH: GET into $TMP/check-body, headers into $TMP/check-hdrs; echoes "status version"
fetch() {
    local opt=(--http1.1)
    [ "$2" = h2 ] && opt=(--http2)
    curl -sk "${opt[@]}" -D "$TMP/check-hdrs" -o "$TMP/check-body" -w '%{http_code} %{http_version}' --max-time 10 \
        "$(url "$1" "$2" "$3")" || true
}
hdr() { tr -d '\r' <"$TMP/check-hdrs" | awk -v n="$1" 'BEGIN { n = tolower(n) } { split($0, a, ":") } tolower(a[1]) == n { sub(/^[^:]*: */, ""); print; exit }'; }
# is_hit SERVER: the last fetch was served from the server's cache
is_hit() {
    case $1 in
    edgeproxy) hdr cache-status | grep -q '; *hit' ;;
    nginx) [ "$(hdr x-cache-status)" = HIT ] ;;
    varnish) hdr x-varnish | grep -Eq '^[0-9]+ [0-9]+$' ;; # two ids: this request's and the one that stored it
    h2o-file) true ;;
    esac
}
log "warming the caches and checking status, version, body and hit for every server, protocol and object"
for s in "${HIT_SERVERS[@]}"; do
    for size in 1k 16k 256k; do
        # both listeners: the scheme is part of edgeproxy's and nginx's cache keys
        for _ in 1 2 3; do fetch "$s" h1 "/obj/$size.bin" >/dev/null; fetch "$s" h1tls "/obj/$size.bin" >/dev/null; sleep 0.05; done
        sleep 0.2 # edgeproxy's store commits on its writer thread
        for proto in h1 h1tls h2; do
            out=$(fetch "$s" "$proto" "/obj/$size.bin")
            want="200 1.1"; [ "$proto" = h2 ] && want="200 2"
            [ "$out" = "$want" ] || die "$s ($proto, $size): expected status/version '$want', got '$out'"
            cmp -s "$TMP/check-body" "$TMP/www/obj/$size.bin" || die "$s ($proto, $size): the body is not the object's bytes"
            is_hit "$s" || { cat "$TMP/check-hdrs" >&2; die "$s ($proto, $size): a warm request was not a cache hit (headers above)"; }
        done
    done
    log "$s: 200, right body, and a cache hit on h1, h1tls and h2 for 1k, 16k, 256k"
done
# the miss run's checks: edgeproxy answers a new URL as a miss, h2o-proxy passes it through
for s in edgeproxy h2o-proxy; do
    for proto in h1 h2; do
        out=$(fetch "$s" "$proto" "/obj/$MISS_SIZE.bin?check-$proto")
        want="200 1.1"; [ "$proto" = h2 ] && want="200 2"
        [ "$out" = "$want" ] || die "$s ($proto, miss check): expected status/version '$want', got '$out'"
        cmp -s "$TMP/check-body" "$TMP/www/obj/$MISS_SIZE.bin" || die "$s ($proto, miss check): wrong body"
        if [ "$s" = edgeproxy ]; then
            hdr cache-status | grep -q 'fwd=uri-miss' || { cat "$TMP/check-hdrs" >&2; die "edgeproxy: a new URL was not a miss"; }
        fi
    done
done

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)
# cpu0_busy: non-idle ticks of CPU $SERVER_CPU (steal included: time the hypervisor gave to other guests)
cpu0_busy() { awk -v c="cpu$SERVER_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu0_steal() { awk -v c="cpu$SERVER_CPU" '$1 == c { print $9 }' /proc/stat; }
cpu1_busy() { awk -v c="cpu$LOAD_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# other_pct B0 B1 C0 C1 T0 T1: CPU $SERVER_CPU busy time not spent in the server's processes (other tenants, other
# processes, interrupts), in % of wall time: a noise indicator
other_pct() {
    awk -v b0="$1" -v b1="$2" -v c0="$3" -v c1="$4" -v t0="$5" -v t1="$6" -v hz="$CLK_TCK" \
        'BEGIN { o = ((b1 - b0) - (c1 - c0)) / hz / (t1 - t0) * 100; printf "%.0f", (o < 0 ? 0 : o) }'
}
cpu_frac() { # cpu_frac T0 T1 C0 C1 RPS -> "cpu% rps_per_cpu"
    awk -v t0="$1" -v t1="$2" -v a="$3" -v b="$4" -v hz="$CLK_TCK" -v r="$5" \
        'BEGIN { f = (b - a) / hz / (t1 - t0); printf "%.0f %.0f\n", f * 100, (f > 0 ? r / f : 0) }'
}
p99_of_logs() { # h2load --log-file files -> p99 in ms of the 2xx/3xx requests
    cat "$@" | awk '$2 >= 200 && $2 < 400 { print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.2f", v[i] / 1000 } else print "n/a" }'
}

WRK="wrk -t1 -c$H1_CONNS"
H2LOAD="h2load -c$H2_CONNS -m$H2_STREAMS -t1 --tls13-ciphers=$TLS13_CIPHERS"

# wrk_run SECONDS URL [PREFIX] -> output; with PREFIX, the miss script makes every request's path PREFIX + a counter
wrk_run() {
    local d=$1 u=$2
    if [ -n "${3:-}" ]; then
        OPENSSL_CONF="$TMP/client-openssl.cnf" taskset -c $LOAD_CPU $WRK -d"${d}s" --latency -s "$TMP/miss.lua" "$u" -- "$3" 2>&1
    else
        OPENSSL_CONF="$TMP/client-openssl.cnf" taskset -c $LOAD_CPU $WRK -d"${d}s" --latency "$u" 2>&1
    fi
}
parse_wrk() { # sets R_RPS R_P99 R_ERR R_REQS from wrk output $1
    R_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$1")
    R_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$1")")
    R_ERR=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                 END { print n + 0 }' <<<"$1")
    R_REQS=$(awk '/requests in/ { print $1 }' <<<"$1")
    [ -n "$R_RPS" ] || die "could not parse wrk output: $1"
}

# run_hit SERVER PROTO SIZE ROUND: warm-up then a measured run; sets R_RPS R_P99 R_ERR R_CPU R_EFF R_ORIGIN
run_hit() {
    local s=$1 proto=$2 size=$3 r=$4 u out t0 t1 c0 c1 b0 b1 s0 s1 l0 l1 o0 o1 logf="$TMP/h2load.log"
    local pids
    pids=$(pids_of "$s" "$proto")
    u=$(url "$s" "$proto" "/obj/$size.bin")
    origin_count; o0=$O_REQ
    if [ "$proto" = h2 ]; then
        taskset -c $LOAD_CPU $H2LOAD -D "$WARMUP" "$u" >/dev/null 2>&1 || true
        c0=$(cpu_ticks $pids); b0=$(cpu0_busy); s0=$(cpu0_steal); l0=$(cpu1_busy); t0=$(now)
        out=$(taskset -c $LOAD_CPU $H2LOAD -D "$DURATION" --log-file="$logf" "$u" 2>&1) || die "h2load failed against $s: $out"
        t1=$(now); b1=$(cpu0_busy); s1=$(cpu0_steal); l1=$(cpu1_busy); c1=$(cpu_ticks $pids)
        R_RPS=$(awk '/^finished in/ { printf "%.0f", $4 }' <<<"$out")
        R_P99=$(p99_of_logs "$logf")
        R_ERR=$(awk '/^requests:/ { n += $10 + $12 + $14 } /^status codes:/ { n += $7 + $9 } END { print n + 0 }' <<<"$out")
        TLSINFO[$s]=$(awk '/^TLS Protocol:/ { print $3 }' <<<"$out")/$(awk '/^Cipher:/ { print $2 }' <<<"$out")
        rm -f "$logf"
        [ -n "$R_RPS" ] || die "could not parse h2load output for $s: $out"
    else
        wrk_run "$WARMUP" "$u" >/dev/null || true
        c0=$(cpu_ticks $pids); b0=$(cpu0_busy); s0=$(cpu0_steal); l0=$(cpu1_busy); t0=$(now)
        out=$(wrk_run "$DURATION" "$u") || die "wrk failed against $s: $out"
        t1=$(now); b1=$(cpu0_busy); s1=$(cpu0_steal); l1=$(cpu1_busy); c1=$(cpu_ticks $pids)
        parse_wrk "$out"
    fi
    echo "$out" >"$TMP/out-hit-$proto-$size-$s-$r.txt"
    origin_count; o1=$O_REQ
    R_ORIGIN=$((o1 - o0))
    R_OTHER=$(other_pct "$b0" "$b1" "$c0" "$c1" "$t0" "$t1")
    R_STEAL=$(other_pct "$s0" "$s1" 0 0 "$t0" "$t1")
    R_LOADCPU=$(other_pct "$l0" "$l1" 0 0 "$t0" "$t1")
    read -r R_CPU R_EFF < <(cpu_frac "$t0" "$t1" "$c0" "$c1" "$R_RPS")
}

# h2load_miss SECONDS URLBASE TAG LOGPREFIX: H2_CONNS h2load processes of one connection each, every one with its own
# list of unique URIs (h2load sends the same list from every connection, so one process per connection). Sets
# M_OUT (all outputs), M_RPS, M_ERR, M_REQS, M_WRAP (1 if a process used up its list and started it again).
h2load_miss() {
    local d=$1 base=$2 tag=$3 lp=$4 c n i f pids=()
    n=$((d * 8000 + 2000)) # URIs per connection: enough for 8000 req/s per connection (128k req/s in all)
    for c in $(seq "$H2_CONNS"); do
        awk -v b="$base" -v t="$tag-$c-" -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print b t i }' >"$TMP/uris-$c"
    done
    for c in $(seq "$H2_CONNS"); do
        taskset -c $LOAD_CPU h2load -c1 -m"$H2_STREAMS" -t1 --tls13-ciphers="$TLS13_CIPHERS" -D "$d" \
            ${lp:+--log-file="$lp-$c"} -i "$TMP/uris-$c" >"$TMP/h2load-miss-$c.txt" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || die "h2load (miss run) failed: $(cat "$TMP"/h2load-miss-*.txt)"; done
    M_OUT=$(cat "$TMP"/h2load-miss-*.txt)
    M_RPS=$(awk '/^finished in/ { n += $4 } END { printf "%.0f", n }' <<<"$M_OUT")
    M_ERR=$(awk '/^requests:/ { n += $10 + $12 + $14 } /^status codes:/ { n += $7 + $9 } END { print n + 0 }' <<<"$M_OUT")
    M_REQS=$(awk '/^requests:/ { n += $8 } END { print n + 0 }' <<<"$M_OUT")
    M_WRAP=$(awk -v n="$n" '/^requests:/ && $8 > n { w = 1 } END { print w + 0 }' <<<"$M_OUT")
    rm -f "$TMP"/uris-* "$TMP"/h2load-miss-*.txt
}

# run_miss SERVER PROTO ROUND: warm-up then a measured run, every request for a URL never asked before (a query
# string with a counter); sets R_RPS R_P99 R_ERR R_CPU R_EFF R_ORIGIN (origin requests per measured request)
run_miss() {
    local s=$1 proto=$2 r=$3 u out t0 t1 c0 c1 b0 b1 s0 s1 l0 l1 o0 o1 pid base path="/obj/$MISS_SIZE.bin?miss="
    pid=$(pid_of "$s")
    base=$(url "$s" "$proto" "$path")
    if [ "$proto" = h2 ]; then
        h2load_miss "$WARMUP" "$base" "$s-$r-w" ""
        origin_count; o0=$O_REQ; c0=$(cpu_ticks "$pid"); b0=$(cpu0_busy); s0=$(cpu0_steal); l0=$(cpu1_busy); t0=$(now)
        h2load_miss "$DURATION" "$base" "$s-$r-m" "$TMP/h2load-miss.log"
        t1=$(now); b1=$(cpu0_busy); s1=$(cpu0_steal); l1=$(cpu1_busy); c1=$(cpu_ticks "$pid"); origin_count; o1=$O_REQ
        out=$M_OUT
        R_RPS=$M_RPS; R_ERR=$M_ERR; R_REQS=$M_REQS
        R_P99=$(p99_of_logs "$TMP"/h2load-miss.log-*)
        rm -f "$TMP"/h2load-miss.log-*
        ((M_WRAP == 0)) || log "warning: an h2load process used up its URI list (some requests repeated a URL)"
    else
        wrk_run "$WARMUP" "$(url "$s" "$proto" /)" "$path$s-$r-w-" >/dev/null || true
        origin_count; o0=$O_REQ; c0=$(cpu_ticks "$pid"); b0=$(cpu0_busy); s0=$(cpu0_steal); l0=$(cpu1_busy); t0=$(now)
        out=$(wrk_run "$DURATION" "$(url "$s" "$proto" /)" "$path$s-$r-m-") || die "wrk failed against $s: $out"
        t1=$(now); b1=$(cpu0_busy); s1=$(cpu0_steal); l1=$(cpu1_busy); c1=$(cpu_ticks "$pid"); origin_count; o1=$O_REQ
        parse_wrk "$out"
    fi
    echo "$out" >"$TMP/out-miss-$proto-$s-$r.txt"
    R_OTHER=$(other_pct "$b0" "$b1" "$c0" "$c1" "$t0" "$t1")
    R_STEAL=$(other_pct "$s0" "$s1" 0 0 "$t0" "$t1")
    R_LOADCPU=$(other_pct "$l0" "$l1" 0 0 "$t0" "$t1")
    R_ORIGIN=$(awk -v a="$o0" -v b="$o1" -v n="$R_REQS" 'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }')
    read -r R_CPU R_EFF < <(cpu_frac "$t0" "$t1" "$c0" "$c1" "$R_RPS")
}

# ---------------------------------------------------------------- measure: hits (rounds interleave the servers)
declare -A ALL     # "proto size server" -> "rps p99 err cpu eff" lines, one per round
declare -A ORIG_BY # server -> origin requests during its hit runs
declare -A TLSINFO
OTHERS='' STEALS=''
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
origin_count; ORIGIN_BEFORE_HITS=$O_REQ
log "origin requests before the hit runs (warming included): $ORIGIN_BEFORE_HITS"
T_MEASURE=$(date +%s)
for r in $(seq "$ROUNDS"); do
    for proto in $PROTOS; do
        for size in $SIZES; do
            for s in "${HIT_SERVERS[@]}"; do
                run_hit "$s" "$proto" "$size" "$r"
                ALL["$proto $size $s"]+="$R_RPS $R_P99 $R_ERR $R_CPU $R_EFF"$'\n'
                ORIG_BY[$s]=$((${ORIG_BY[$s]:-0} + R_ORIGIN))
                OTHERS+="$R_OTHER"$'\n'; STEALS+="$R_STEAL"$'\n'
                log "round $r hit $proto $size $s: $R_RPS req/s, p99 $R_P99 ms, errors $R_ERR, server CPU $R_CPU%, $R_EFF req/s per CPU, origin requests $R_ORIGIN, other load on CPU $SERVER_CPU $R_OTHER% (steal $R_STEAL%), CPU $LOAD_CPU busy $R_LOADCPU%"
            done
        done
    done
done
origin_count; ORIGIN_AFTER_HITS=$O_REQ
log "origin requests after the hit runs: $ORIGIN_AFTER_HITS ($((ORIGIN_AFTER_HITS - ORIGIN_BEFORE_HITS)) during them)"

# ---------------------------------------------------------------- measure: misses
MISS_SERVERS=(edgeproxy h2o-proxy)
for r in $(seq "$ROUNDS"); do
    for proto in $MISS_PROTOS; do
        for s in "${MISS_SERVERS[@]}"; do
            run_miss "$s" "$proto" "$r"
            ALL["miss $proto $s"]+="$R_RPS $R_P99 $R_ERR $R_CPU $R_EFF $R_ORIGIN"$'\n'
            OTHERS+="$R_OTHER"$'\n'; STEALS+="$R_STEAL"$'\n'
            log "round $r miss $proto $s: $R_RPS req/s, p99 $R_P99 ms, errors $R_ERR, server CPU $R_CPU%, $R_EFF req/s per CPU, origin requests per request $R_ORIGIN, other load on CPU $SERVER_CPU $R_OTHER% (steal $R_STEAL%), CPU $LOAD_CPU busy $R_LOADCPU%"
        done
    done
done
origin_count; ORIGIN_AFTER_MISSES=$O_REQ
STORE_DU=$(du -sh --apparent-size "$TMP/edgeproxy/cache" 2>/dev/null | cut -f1)/$(du -sh "$TMP/edgeproxy/cache" 2>/dev/null | cut -f1)
T_MEASURED=$(($(date +%s) - T_MEASURE))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
summ() { sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "median %s%%, max %s%%", v[int((NR + 1) / 2)], v[NR] }'; }
OTHER_SUMMARY="$(summ <<<"$OTHERS") (hypervisor steal alone: $(summ <<<"$STEALS")); per run on stderr"

# ---------------------------------------------------------------- medians
# med "KEY" COLUMN: the median of that column over the rounds (mean of the middle two for an even count)
med() {
    sed '/^$/d' <<<"${ALL[$1]:-}" | awk -v c="$2" '{ print $c }' | grep -v '^n/a$' | sort -g |
        awk '{ v[NR] = $1 } END { if (!NR) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
sumcol() { sed '/^$/d' <<<"${ALL[$1]:-}" | awk -v c="$2" '{ n += $c } END { print n + 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
fmt0() { awk -v a="$1" 'BEGIN { if (a == "n/a") print a; else printf "%.0f", a }'; }

# ---------------------------------------------------------------- goals
# Each goal is judged on req/s (the verdict) and, for reference, on req/s per server CPU: when the load generator's
# CPU was the limit (server CPU well below 100%), the per-CPU ratio says more about the servers themselves.
GOALS=()
MISSED=0
MISS_GOAL_MISSED=0
ge() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a == "n/a" || b == "n/a") print "na"; else print ((a >= f * b) ? 1 : 0) }'; }
verdict_of() { case $1 in 1) echo MET ;; 0) echo "NOT MET" ;; *) echo "n/a" ;; esac; }
# goal TEXT FACTOR KEY_EDGEPROXY KEY_OTHER
goal() {
    local text=$1 f=$2 e o ee oe ok okc
    e=$(med "$3" 1); o=$(med "$4" 1); ee=$(med "$3" 5); oe=$(med "$4" 5)
    ok=$(ge "$e" "$o" "$f"); okc=$(ge "$ee" "$oe" "$f")
    [ "$ok" = 0 ] && MISSED=1
    GOALS+=("$text: **$(verdict_of "$ok")** (req/s $(ratio "$e" "$o"); per server CPU $(ratio "$ee" "$oe"): $(verdict_of "$okc"))")
    [ "$ok" = 0 ] && return 1
    return 0
}
proto_name() { case $1 in h1) echo "HTTP/1.1" ;; h1tls) echo "HTTP/1.1+TLS" ;; h2) echo "HTTP/2+TLS" ;; esac; }
for proto in $PROTOS; do
    for size in 1k 16k; do
        case " $SIZES " in *" $size "*) ;; *) continue ;; esac
        goal "$(proto_name "$proto") ${LABEL_OF[$size]} hits >= 0.9x h2o-file" 0.9 "$proto $size edgeproxy" "$proto $size h2o-file" || true
    done
    case " $SIZES " in *" 256k "*)
        goal "$(proto_name "$proto") 256 KiB hits >= Varnish" 1 "$proto 256k edgeproxy" "$proto 256k varnish" || true ;;
    esac
done
case " $PROTOS " in *" h2 "*)
    for size in $SIZES; do
        goal "HTTP/2+TLS ${LABEL_OF[$size]} hits >= 3x nginx" 3 "h2 $size edgeproxy" "h2 $size nginx" || true
    done ;;
esac
for proto in $MISS_PROTOS; do
    goal "$(proto_name "$proto") misses >= 0.9x h2o as a plain proxy" 0.9 "miss $proto edgeproxy" "miss $proto h2o-proxy" ||
        MISS_GOAL_MISSED=1
done

# ---------------------------------------------------------------- profiles (a missed goal, or PROFILE=1)
# profile KIND(hit|miss): perf record -g on edgeproxy during one HTTP/1.1 run of DURATION seconds (1 KiB hits, or
# misses); sets PROF_RPS, PROF_SYM (top 20 symbols, self time) and PROF_DSO (by thread and library)
profile() {
    local kind=$1 u prefix="" out perf_pid data="$TMP/perf-$1.data"
    if [ "$kind" = hit ]; then u=$(url edgeproxy h1 /obj/1k.bin); else u=$(url edgeproxy h1 /); prefix="/obj/$MISS_SIZE.bin?miss=profile-"; fi
    log "profiling edgeproxy: perf record -g during a ${DURATION}s HTTP/1.1 $kind run"
    wrk_run "$WARMUP" "$u" ${prefix:+"${prefix}w-"} >/dev/null || true
    taskset -c $LOAD_CPU perf record -g -o "$data" -p "$(pid_of edgeproxy)" -- sleep "$DURATION" >"$TMP/perf-$kind.out" 2>&1 &
    perf_pid=$!
    sleep 0.3
    out=$(wrk_run "$DURATION" "$u" ${prefix:+"${prefix}m-"}) || true
    wait "$perf_pid" || log "perf record failed: $(cat "$TMP/perf-$kind.out")"
    parse_wrk "$out"
    PROF_RPS=$R_RPS
    PROF_SYM=$(perf report -i "$data" --no-children --sort symbol -g none --stdio 2>/dev/null | grep -v '^#' | sed '/^ *$/d' | head -20) || true
    PROF_DSO=$(perf report -i "$data" --no-children --sort comm,dso -g none --stdio 2>/dev/null | grep -v '^#' | sed '/^ *$/d' | head -10) || true
}
PROFILE_HIT='' PROFILE_MISS=''
if [ "$PROFILE" = 1 ] || { [ "$PROFILE" = auto ] && ((MISSED)); }; then
    profile hit
    PROFILE_HIT_RPS=$PROF_RPS PROFILE_HIT=$PROF_SYM PROFILE_HIT_DSO=$PROF_DSO
    if [ "$PROFILE" = 1 ] || ((MISS_GOAL_MISSED)); then
        profile miss
        PROFILE_MISS_RPS=$PROF_RPS PROFILE_MISS=$PROF_SYM PROFILE_MISS_DSO=$PROF_DSO
    fi
fi

# ---------------------------------------------------------------- report
V_EDGE=$("$EDGEPROXY" --version 2>&1 | head -1) || true
V_H2O=$(h2o --version 2>&1 | head -1) || true
V_NGINX=$(nginx -v 2>&1 | head -1) || true
V_VARNISH=$(varnishd -V 2>&1 | head -1) || true
V_HITCH=$(hitch --version 2>&1 | head -1) || true
V_WRK=$(wrk -v 2>&1 | head -1) || true
V_H2LOAD=$(h2load --version 2>&1 | head -1) || true
V_SSL=$(openssl version) || true
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) || true
T_TOTAL=$(($(date +%s) - T_START))

hit_table() { # hit_table PROTO md|txt
    local proto=$1 fmt=$2 size s rps p99 err cpu eff e ee
    if [ "$fmt" = md ]; then
        echo "| object | server | req/s | p99 (ms) | errors | server CPU | req/s per CPU | edgeproxy / this (req/s) | edgeproxy / this (per CPU) |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    else
        printf '  %-8s %-10s %8s %8s %6s %10s %13s %12s %12s\n' object server req/s p99_ms errors server_CPU req/s_per_CPU edge/this edge/this_CPU
    fi
    for size in $SIZES; do
        e=$(med "$proto $size edgeproxy" 1); ee=$(med "$proto $size edgeproxy" 5)
        for s in "${HIT_SERVERS[@]}"; do
            rps=$(fmt0 "$(med "$proto $size $s" 1)"); p99=$(med "$proto $size $s" 2); err=$(sumcol "$proto $size $s" 3)
            cpu=$(fmt0 "$(med "$proto $size $s" 4)"); eff=$(fmt0 "$(med "$proto $size $s" 5)")
            local name=$s
            [ "$s" = varnish ] && [ "$proto" != h1 ] && name="varnish+hitch"
            if [ "$fmt" = md ]; then
                echo "| ${LABEL_OF[$size]} | $name | $rps | $p99 | $err | $cpu% | $eff | $(ratio "$e" "$rps") | $(ratio "$ee" "$eff") |"
            else
                printf '  %-8s %-10s %8s %8s %6s %9s%% %13s %12s %12s\n' "$size" "$name" "$rps" "$p99" "$err" "$cpu" "$eff" \
                    "$(ratio "$e" "$rps")" "$(ratio "$ee" "$eff")"
            fi
        done
    done
}
ratio_summary() { # md|txt
    local fmt=$1 proto size e f v n
    if [ "$fmt" = md ]; then
        echo "| protocol | object | edgeproxy req/s | vs h2o-file | vs Varnish | vs nginx |"
        echo "|---|---|---:|---:|---:|---:|"
    else
        printf '  %-13s %-8s %15s %12s %12s %12s\n' protocol object edgeproxy_req/s vs_h2o-file vs_Varnish vs_nginx
    fi
    for proto in $PROTOS; do
        for size in $SIZES; do
            e=$(med "$proto $size edgeproxy" 1); f=$(med "$proto $size h2o-file" 1)
            v=$(med "$proto $size varnish" 1); n=$(med "$proto $size nginx" 1)
            if [ "$fmt" = md ]; then
                echo "| $(proto_name "$proto") | ${LABEL_OF[$size]} | $(fmt0 "$e") | $(ratio "$e" "$f") | $(ratio "$e" "$v") | $(ratio "$e" "$n") |"
            else
                printf '  %-13s %-8s %15s %12s %12s %12s\n' "$(proto_name "$proto")" "$size" "$(fmt0 "$e")" "$(ratio "$e" "$f")" \
                    "$(ratio "$e" "$v")" "$(ratio "$e" "$n")"
            fi
        done
    done
}
miss_table() { # md|txt
    local fmt=$1 proto s rps p99 err cpu eff org e
    if [ "$fmt" = md ]; then
        echo "| protocol | server | req/s | p99 (ms) | errors | server CPU | req/s per CPU | origin requests per request | edgeproxy / this |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    else
        printf '  %-13s %-10s %8s %8s %6s %10s %13s %15s %10s\n' protocol server req/s p99_ms errors server_CPU req/s_per_CPU origin_per_req edge/this
    fi
    for proto in $MISS_PROTOS; do
        e=$(med "miss $proto edgeproxy" 1)
        for s in "${MISS_SERVERS[@]}"; do
            rps=$(fmt0 "$(med "miss $proto $s" 1)"); p99=$(med "miss $proto $s" 2); err=$(sumcol "miss $proto $s" 3)
            cpu=$(fmt0 "$(med "miss $proto $s" 4)"); eff=$(fmt0 "$(med "miss $proto $s" 5)"); org=$(med "miss $proto $s" 6)
            if [ "$fmt" = md ]; then
                echo "| $(proto_name "$proto") | $s | $rps | $p99 | $err | $cpu% | $eff | $org | $(ratio "$e" "$rps") |"
            else
                printf '  %-13s %-10s %8s %8s %6s %9s%% %13s %15s %10s\n' "$(proto_name "$proto")" "$s" "$rps" "$p99" "$err" "$cpu" "$eff" "$org" "$(ratio "$e" "$rps")"
            fi
        done
    done
}

report() { # report md|txt
    local fmt=$1 h="" proto g
    [ "$fmt" = md ] && h="#### "
    echo "${h}Cache benchmark, $DATE"
    echo
    echo "- machine: $(nproc) CPUs ($CPU_MODEL), $(uname -sr); shared machine, figures are noisy"
    echo "- pinning: the server under test on CPU $SERVER_CPU (taskset -c $SERVER_CPU, every thread and process of it: Varnish's thread per connection, hitch in front of Varnish for TLS); load generator on CPU $LOAD_CPU; the origin (nginx, 1 worker, the objects as static files with Cache-Control: max-age=3600) also on CPU $LOAD_CPU (idle during hit runs)"
    echo "- one server under load at a time; ${WARMUP}s warm-up before each ${DURATION}s measured run; $ROUNDS interleaved rounds, the MEDIAN of each column shown (all rounds are on stderr); errors summed over the rounds"
    echo "- edgeproxy: $V_EDGE ($EDGEPROXY_LABEL), threads: 1, cache max_size $CACHE_MAX_SIZE; $V_H2O (num-threads: 1); $V_NGINX (worker_processes 1, proxy_cache, proxy_cache_lock on); $V_VARNISH (thread_pools=1, -s malloc,256m); $V_HITCH (workers = 1); access logs off"
    echo "- load: $V_WRK; $V_H2LOAD; $V_SSL; TLS 1.3 suite offered by the clients: $TLS13_CIPHERS (h2load --tls13-ciphers; wrk through OPENSSL_CONF)"
    echo "- HTTP/2 TLS negotiated: edgeproxy ${TLSINFO[edgeproxy]:-?}, h2o-file ${TLSINFO[h2o-file]:-?}, varnish+hitch ${TLSINFO[varnish]:-?}, nginx ${TLSINFO[nginx]:-?} (ECDSA P-256 self-signed cert)"
    echo "- server CPU = CPU time of the server's processes during the measured run / wall time (100% = CPU $SERVER_CPU saturated; below ~90%: CPU $LOAD_CPU (the load generator) was the limit, or another tenant took the core); req/s per CPU = req/s / server CPU"
    echo "- p99: wrk --latency for HTTP/1.1; for HTTP/2, from h2load --log-file per-request times"
    echo "- hits are hits: origin requests before the hit runs (warming included) $ORIGIN_BEFORE_HITS, after $ORIGIN_AFTER_HITS: $((ORIGIN_AFTER_HITS - ORIGIN_BEFORE_HITS)) during all hit runs (edgeproxy ${ORIG_BY[edgeproxy]:-0}, nginx ${ORIG_BY[nginx]:-0}, varnish ${ORIG_BY[varnish]:-0}, h2o-file ${ORIG_BY[h2o-file]:-0})"
    [ -n "$MISS_PROTOS" ] && echo "- misses: every request a URL never asked before (/obj/$MISS_SIZE.bin?miss=TAG-N; wrk: a Lua script with a counter; h2load: $H2_CONNS processes of 1 connection x $H2_STREAMS streams, each with its own list of unique URIs, since h2load sends the same list on every connection); origin requests after the miss runs $ORIGIN_AFTER_MISSES; edgeproxy's store after them: $STORE_DU (apparent/on disk)"
    echo "- noise: load average before measuring $LOAD_BEFORE, after $LOAD_AFTER (1/5/15 min, the benchmark's own load included); CPU $SERVER_CPU time not spent in the server under test during the measured runs (other processes and tenants, hypervisor steal, some network interrupts): $OTHER_SUMMARY"
    echo "- time: $T_MEASURED s of measuring, $T_TOTAL s for the whole script"
    echo
    for proto in $PROTOS; do
        case $proto in
        h1) echo "${h}Hits, HTTP/1.1 plain (wrk -t1 -c$H1_CONNS)" ;;
        h1tls) echo "${h}Hits, HTTP/1.1 over TLS (wrk -t1 -c$H1_CONNS, https)" ;;
        h2) echo "${h}Hits, HTTP/2 over TLS (h2load -c$H2_CONNS -m$H2_STREAMS -t1)" ;;
        esac
        echo
        hit_table "$proto" "$fmt"
        echo
    done
    echo "${h}Hit ratios (edgeproxy req/s / the other's req/s, medians)"
    echo
    ratio_summary "$fmt"
    echo
    if [ -n "$MISS_PROTOS" ]; then
        echo "${h}Misses, ${LABEL_OF[$MISS_SIZE]} objects, every request a new URL: edgeproxy (cache on) vs h2o as a plain proxy"
        echo
        miss_table "$fmt"
        echo
    fi
    echo "${h}Goals"
    echo
    for g in "${GOALS[@]}"; do echo "- $g"; done
    if [ -n "$PROFILE_HIT" ]; then
        echo
        echo "${h}Profile of edgeproxy: HTTP/1.1 1 KiB hits ($PROFILE_HIT_RPS req/s under perf)"
        echo
        echo "perf record -g -p EDGEPROXY_PID -- sleep $DURATION during '$WRK -d${DURATION}s URL'; perf report --no-children --sort symbol -g none (top 20), then --sort comm,dso (by thread and library)"
        echo
        [ "$fmt" = md ] && echo '```'
        echo "$PROFILE_HIT"
        echo
        echo "$PROFILE_HIT_DSO"
        [ "$fmt" = md ] && echo '```'
    fi
    if [ -n "$PROFILE_MISS" ]; then
        echo
        echo "${h}Profile of edgeproxy: HTTP/1.1 misses ($PROFILE_MISS_RPS req/s under perf)"
        echo
        echo "the same, during '$WRK -d${DURATION}s -s miss.lua URL -- PREFIX'"
        echo
        [ "$fmt" = md ] && echo '```'
        echo "$PROFILE_MISS"
        echo
        echo "$PROFILE_MISS_DSO"
        [ "$fmt" = md ] && echo '```'
    fi
    echo
    echo "${h}Commands"
    echo
    [ "$fmt" = md ] && echo '```'
    echo "origin:     taskset -c $LOAD_CPU $ORIGIN_CMD"
    echo "edgeproxy:  taskset -c $SERVER_CPU $EDGE_CMD"
    echo "nginx:      taskset -c $SERVER_CPU $NGINX_CMD"
    echo "varnish:    taskset -c $SERVER_CPU $VARNISH_CMD"
    echo "hitch:      taskset -c $SERVER_CPU $HITCH_CMD"
    echo "h2o-file:   taskset -c $SERVER_CPU $H2O_FILE_CMD"
    echo "h2o-proxy:  taskset -c $SERVER_CPU $H2O_PROXY_CMD"
    echo "h1, h1tls:  OPENSSL_CONF=$TMP/client-openssl.cnf taskset -c $LOAD_CPU $WRK -d${DURATION}s --latency URL    (warm-up: -d${WARMUP}s)"
    echo "h2:         taskset -c $LOAD_CPU $H2LOAD -D $DURATION --log-file=FILE URL    (warm-up: -D $WARMUP)"
    echo "miss h1:    ... $WRK -d${DURATION}s --latency -s miss.lua URL -- '/obj/$MISS_SIZE.bin?miss=TAG-'"
    echo "miss h2:    $H2_CONNS x: taskset -c $LOAD_CPU h2load -c1 -m$H2_STREAMS -t1 --tls13-ciphers=$TLS13_CIPHERS -D $DURATION --log-file=FILE -i UNIQUE-URIS-FILE"
    echo "URLs:       http://127.0.0.1:PORT/obj/{1k,16k,256k}.bin; ports: origin $P_ORIGIN, edgeproxy $P_EDGE/$P_EDGE_TLS, nginx $P_NGINX/$P_NGINX_TLS, varnish $P_VARNISH, hitch $P_HITCH, h2o-file $P_FILE/$P_FILE_TLS, h2o-proxy $P_H2OP/$P_H2OP_TLS"
    [ "$fmt" = md ] && echo '```'
    if [ "$fmt" = md ]; then
        echo
        echo "<details><summary>Generated configurations (TMP=$TMP)</summary>"
        echo
        local f
        for f in edgeproxy/edge.yaml nginx/nginx.conf hitch/hitch.conf h2o-file/h2o.conf h2o-proxy/h2o.conf origin/nginx.conf miss.lua client-openssl.cnf; do
            echo "$f:"
            echo '```'
            sed "s|$TMP|\$TMP|g" "$TMP/$f"
            echo '```'
        done
        echo "</details>"
    fi
    return 0
}

echo "================================================================================"
report txt
echo
echo "---------------------------------------- markdown (paste into benchmarks/RESULTS.md)"
echo
report md
