#!/usr/bin/env bash
# Pass-through reverse proxy benchmark: edgeproxy vs h2o's standalone server vs nginx, in front of the same origin.
#
#   bash benchmarks/proxy.sh                  # DURATION=10 s per measured run, 2 s warm-up before each
#   DURATION=30 ROUNDS=3 bash benchmarks/proxy.sh
#
# Environment:
#   DURATION   seconds of each measured run (default 10)
#   WARMUP     seconds of the warm-up run before each measured run (default 2)
#   ROUNDS     measured rounds per server and protocol, interleaved; the best req/s round is reported (default 1)
#   CONNS      client connections (default 64); STREAMS: concurrent HTTP/2 streams per connection (default 10)
#   PORT_BASE  first of 7 consecutive loopback ports to use (default 19400)
#   EDGEPROXY  edgeproxy binary; default: build the working tree into build-bench/ (Release) and use that
#   BODY_SIZE  origin response body size in bytes (default 512)
#   TLS13_CIPHERS  TLS 1.3 suites h2load offers (default TLS_AES_128_GCM_SHA256, the same crypto for all three)
#   KEEP_TMP=1 keep the temporary directory (confs, logs) for inspection
#
# Layout: every proxy is pinned to CPU 0 (taskset -c 0), the load generator (wrk / h2load) to CPU 1, and the origin
# (an nginx returning a fixed body) shares CPU 1 with the load generator. Only one proxy is under load at a time.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-10}
PORT_BASE=${PORT_BASE:-19400}
BODY_SIZE=${BODY_SIZE:-512}
# The client offers only this TLS 1.3 suite so all three proxies do the same crypto (edgeproxy, with server
# preference and OpenSSL's default list, would otherwise pick AES-256-GCM while h2o and nginx pick AES-128-GCM).
TLS13_CIPHERS=${TLS13_CIPHERS:-TLS_AES_128_GCM_SHA256}
PROXY_CPU=0
LOAD_CPU=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BENCH=proxy.sh
# shellcheck source=benchmarks/lib.sh
. "$REPO/benchmarks/lib.sh"

# ---------------------------------------------------------------- tools
# the Debian package of each tool; missing ones are installed when running as root
declare -A pkg_of=([nginx]=nginx-light [h2o]=h2o [wrk]=wrk [h2load]=nghttp2-client [openssl]=openssl [curl]=curl
    [taskset]=util-linux [setsid]=util-linux [awk]=mawk [sort]=coreutils)
bench_tools
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (proxies on CPU $PROXY_CPU, load generator on CPU $LOAD_CPU)"
nginx -V 2>&1 | grep -q -- --with-http_v2_module || die "this nginx lacks the http_v2 module (install nginx-light or nginx)"

# ---------------------------------------------------------------- edgeproxy binary
bench_build

# ---------------------------------------------------------------- temp dir, ports, cleanup
bench_tmp edgeproxy-bench

P_ORIGIN=$PORT_BASE
P_EDGE=$((PORT_BASE + 1)); P_EDGE_TLS=$((PORT_BASE + 2))
P_H2O=$((PORT_BASE + 3)); P_H2O_TLS=$((PORT_BASE + 4))
P_NGINX=$((PORT_BASE + 5)); P_NGINX_TLS=$((PORT_BASE + 6))
bench_ports "$PORT_BASE" 7

# ---------------------------------------------------------------- shared inputs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null ||
    die "openssl could not generate the self-signed certificate"
BODY=$(head -c "$BODY_SIZE" < <(yes 'hello from the origin, a small fixed response body.' | tr -d '\n'))
printf '%s' "$BODY" >"$TMP/expected-body"


# ---------------------------------------------------------------- origin: nginx returning a fixed body, CPU 1
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
    server {
        listen 127.0.0.1:$P_ORIGIN backlog=4096;
        location / { default_type text/plain; return 200 "$BODY"; }
    }
}
EOF
ORIGIN_CMD="nginx -p $TMP/origin -e $TMP/origin/error.log -c $TMP/origin/nginx.conf -g 'daemon off;'"
start origin "$LOAD_CPU" nginx -p "$TMP/origin" -e "$TMP/origin/error.log" -c "$TMP/origin/nginx.conf" -g 'daemon off;'
wait_http origin "http://127.0.0.1:$P_ORIGIN/"

# ---------------------------------------------------------------- edgeproxy, CPU 0
mkdir -p "$TMP/edgeproxy/data"
cat >"$TMP/edgeproxy/edge.yaml" <<EOF
threads: 1
data_dir: $TMP/edgeproxy/data
listen:
  - { address: 127.0.0.1, port: $P_EDGE }
  - { address: 127.0.0.1, port: $P_EDGE_TLS, tls: { cert: $TMP/cert.pem, key: $TMP/key.pem } }
access_log:
  enabled: false
hosts:
  "*":
    routes:
      - path: /
        origin: { url: "http://127.0.0.1:$P_ORIGIN" }
EOF
EDGE_CMD="$EDGEPROXY -c $TMP/edgeproxy/edge.yaml"
start edgeproxy "$PROXY_CPU" "$EDGEPROXY" -c "$TMP/edgeproxy/edge.yaml"
for _ in $(seq 100); do grep -q 'edgeproxy: ready' "$TMP/edgeproxy.err" 2>/dev/null && break; sleep 0.1; done
grep -q 'edgeproxy: ready' "$TMP/edgeproxy.err" || { cat "$TMP/edgeproxy.err" >&2; die "edgeproxy did not print 'edgeproxy: ready'"; }

# ---------------------------------------------------------------- h2o standalone, CPU 0
mkdir -p "$TMP/h2o"
cat >"$TMP/h2o/h2o.conf" <<EOF
num-threads: 1
user: $(id -un)
pid-file: $TMP/h2o/h2o.pid
error-log: $TMP/h2o/error.log
# no access-log directive: h2o writes no access log
listen:
  host: 127.0.0.1
  port: $P_H2O
listen:
  host: 127.0.0.1
  port: $P_H2O_TLS
  ssl:
    certificate-file: $TMP/cert.pem
    key-file: $TMP/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        proxy.reverse.url: http://127.0.0.1:$P_ORIGIN/
EOF
H2O_CMD="h2o -c $TMP/h2o/h2o.conf"
start h2o "$PROXY_CPU" h2o -c "$TMP/h2o/h2o.conf"

# ---------------------------------------------------------------- nginx proxy, CPU 0
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;   # do not close client connections (HTTP/1.1 and HTTP/2) every 1000 requests
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
        }
    }
}
EOF
NGINX_CMD="nginx -p $TMP/nginx -e $TMP/nginx/error.log -c $TMP/nginx/nginx.conf -g 'daemon off;'"
start nginx "$PROXY_CPU" nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;'

SERVERS=(edgeproxy h2o nginx)
declare -A H1_URL=([edgeproxy]="http://127.0.0.1:$P_EDGE/" [h2o]="http://127.0.0.1:$P_H2O/" [nginx]="http://127.0.0.1:$P_NGINX/")
declare -A H2_URL=([edgeproxy]="https://127.0.0.1:$P_EDGE_TLS/" [h2o]="https://127.0.0.1:$P_H2O_TLS/" [nginx]="https://127.0.0.1:$P_NGINX_TLS/")

# ---------------------------------------------------------------- check that every proxy proxies
for s in "${SERVERS[@]}"; do
    wait_http "$s" "${H1_URL[$s]}"
    wait_http "$s" "${H2_URL[$s]}"
    for mode in h1 h2; do
        if [ $mode = h1 ]; then
            out=$(curl -s --http1.1 -o "$TMP/check-body" -w '%{http_code} %{http_version}' --max-time 5 "${H1_URL[$s]}") || true
            want="200 1.1"
        else
            out=$(curl -sk --http2 -o "$TMP/check-body" -w '%{http_code} %{http_version}' --max-time 5 "${H2_URL[$s]}") || true
            want="200 2"
        fi
        [ "$out" = "$want" ] || die "$s ($mode): expected status/version '$want', got '$out'"
        cmp -s "$TMP/check-body" "$TMP/expected-body" || die "$s ($mode): the body is not the origin's body"
    done
    log "$s proxies: HTTP/1.1 and HTTP/2+TLS return 200 with the origin's body"
done

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)

WRK_CMD="taskset -c $LOAD_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency URL"
H2LOAD_CMD="taskset -c $LOAD_CPU h2load -c$CONNS -m$STREAMS -t1 --tls13-ciphers=$TLS13_CIPHERS -D $DURATION --log-file=FILE URL"

# run_h1 SERVER ROUND: warm-up then measured wrk run; sets R_RPS R_P99 R_ERR R_CPU
run_h1() {
    local s=$1 r=$2 url=${H1_URL[$1]} pid out t0 t1 c0 c1
    pid=$(pid_of "$s")
    taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$pid"); t0=$(now)
    out=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" 2>&1) || die "wrk failed against $s: $out"
    t1=$(now); c1=$(cpu_ticks "$pid")
    echo "$out" >"$TMP/wrk-$s-$r.txt"
    R_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    R_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    R_ERR=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
                 END { print n + 0 }' <<<"$out")
    read -r R_CPU R_EFF < <(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v r="$R_RPS" \
        'BEGIN { f = (b - a) / hz / (t1 - t0); printf "%.0f %.0f\n", f * 100, (f > 0 ? r / f : 0) }')
    [ -n "$R_RPS" ] || die "could not parse wrk output for $s: $out"
}

# run_h2 SERVER ROUND: warm-up then measured h2load run; p99 from h2load's per-request log
run_h2() {
    local s=$1 r=$2 url=${H2_URL[$1]} pid out t0 t1 c0 c1 logf="$TMP/h2load-$1-$2.log"
    pid=$(pid_of "$s")
    taskset -c $LOAD_CPU h2load -c"$CONNS" -m"$STREAMS" -t1 --tls13-ciphers="$TLS13_CIPHERS" -D "$WARMUP" "$url" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$pid"); t0=$(now)
    out=$(taskset -c $LOAD_CPU h2load -c"$CONNS" -m"$STREAMS" -t1 --tls13-ciphers="$TLS13_CIPHERS" -D "$DURATION" --log-file="$logf" "$url" 2>&1) ||
        die "h2load failed against $s: $out"
    t1=$(now); c1=$(cpu_ticks "$pid")
    echo "$out" >"$TMP/h2load-$s-$r.txt"
    R_RPS=$(awk '/^finished in/ { printf "%.0f", $4 }' <<<"$out")
    # log columns: start time (us since epoch), status, microseconds until the end of the response
    R_P99=$(awk '$2 >= 200 && $2 < 400 { print $3 }' "$logf" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) { i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.2f", v[i] / 1000 } else print "n/a" }')
    # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"; "status codes: N 2xx, N 3xx, N 4xx, N 5xx"
    R_ERR=$(awk '/^requests:/ { n += $10 + $12 + $14 } /^status codes:/ { n += $7 + $9 } END { print n + 0 }' <<<"$out")
    R_TLS=$(awk '/^TLS Protocol:/ { print $3 }' <<<"$out")/$(awk '/^Cipher:/ { print $2 }' <<<"$out")
    read -r R_CPU R_EFF < <(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v r="$R_RPS" \
        'BEGIN { f = (b - a) / hz / (t1 - t0); printf "%.0f %.0f\n", f * 100, (f > 0 ? r / f : 0) }')
    rm -f "$logf"
    [ -n "$R_RPS" ] || die "could not parse h2load output for $s: $out"
}

# ---------------------------------------------------------------- measure (rounds interleave the servers)
declare -A ALL  # "proto server" -> "rps p99 err cpu" lines, one per round
declare -A TLSINFO
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
log "measuring: ${ROUNDS} round(s) x 3 servers x 2 protocols x (${WARMUP}s warm-up + ${DURATION}s)"
for r in $(seq "$ROUNDS"); do
    for proto in h1 h2; do
        for s in "${SERVERS[@]}"; do
            R_TLS=
            "run_$proto" "$s" "$r"
            ALL["$proto $s"]+="$R_RPS $R_P99 $R_ERR $R_CPU $R_EFF"$'\n'
            [ -z "$R_TLS" ] || TLSINFO[$s]=$R_TLS
            log "round $r $proto $s: $R_RPS req/s, p99 $R_P99 ms, errors $R_ERR, proxy CPU $R_CPU%, $R_EFF req/s per CPU"
        done
    done
done
# reference: the origin alone (wrk and origin both on CPU $LOAD_CPU), to show the origin is not the ceiling
taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$P_ORIGIN/" >/dev/null 2>&1 || true
ORIGIN_RPS=$(taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$P_ORIGIN/" 2>&1 |
    awk '/^Requests\/sec:/ { printf "%.0f", $2 }')

# best round by req/s: on a shared machine interference only ever lowers a run, so the best round is the least disturbed
pick() { sort -n -r -k1,1 <<<"${ALL[$1]}" | sed '/^$/d' | head -1; }

# ---------------------------------------------------------------- report
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$REPO" diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (working tree has changes)"
V_EDGE=$("$EDGEPROXY" --version 2>&1 | head -1) || true
V_H2O=$(h2o --version 2>&1 | head -1) || true
V_NGINX=$(nginx -v 2>&1 | head -1) || true
V_WRK=$(wrk -v 2>&1 | head -1) || true
V_H2LOAD=$(h2load --version 2>&1 | head -1) || true
V_SSL=$(openssl version) || true
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo) || true

table() { # table PROTO FORMAT(md|txt)
    local proto=$1 fmt=$2 s line rps p99 err cpu eff base_h2o base_nginx eff_h2o eff_nginx
    read -r base_h2o _ _ _ eff_h2o <<<"$(pick "$proto h2o")"
    read -r base_nginx _ _ _ eff_nginx <<<"$(pick "$proto nginx")"
    if [ "$fmt" = md ]; then
        echo "| server | req/s | p99 (ms) | errors | proxy CPU | req/s per CPU | vs h2o | vs nginx | per CPU vs h2o | per CPU vs nginx |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    else
        printf '  %-10s %8s %8s %6s %9s %13s %7s %8s %11s %13s\n' server req/s p99_ms errors proxy_CPU req/s_per_CPU vs_h2o vs_nginx CPU_vs_h2o CPU_vs_nginx
    fi
    for s in "${SERVERS[@]}"; do
        line=$(pick "$proto $s"); read -r rps p99 err cpu eff <<<"$line"
        local rh rn eh en
        rh=$(awk -v a="$rps" -v b="$base_h2o" 'BEGIN { printf "%.2fx", a / b }')
        rn=$(awk -v a="$rps" -v b="$base_nginx" 'BEGIN { printf "%.2fx", a / b }')
        eh=$(awk -v a="$eff" -v b="$eff_h2o" 'BEGIN { printf "%.2fx", a / b }')
        en=$(awk -v a="$eff" -v b="$eff_nginx" 'BEGIN { printf "%.2fx", a / b }')
        if [ "$fmt" = md ]; then
            echo "| $s | $rps | $p99 | $err | $cpu% | $eff | $rh | $rn | $eh | $en |"
        else
            printf '  %-10s %8s %8s %6s %8s%% %13s %7s %8s %11s %13s\n' "$s" "$rps" "$p99" "$err" "$cpu" "$eff" "$rh" "$rn" "$eh" "$en"
        fi
    done
}

verdict() {
    local p e h n ee eh en ec
    for p in h1 h2; do
        read -r e _ _ ec ee <<<"$(pick "$p edgeproxy")"
        read -r h _ _ _ eh <<<"$(pick "$p h2o")"
        read -r n _ _ _ en <<<"$(pick "$p nginx")"
        awk -v p="$p" -v e="$e" -v h="$h" -v n="$n" -v ee="$ee" -v eh="$eh" -v en="$en" -v ec="$ec" 'BEGIN {
            name = p == "h1" ? "HTTP/1.1" : "HTTP/2";
            printf "Goal (>= 0.9x h2o and > nginx) for %s: req/s %s; req/s per proxy CPU %s%s\n", name,
                (e >= 0.9 * h && e > n) ? "MET" : "NOT MET", (ee >= 0.9 * eh && ee > en) ? "MET" : "NOT MET",
                ec < 90 ? sprintf(" (edgeproxy used %d%% of its CPU: the limit was elsewhere, so compare per CPU)", ec) : "" }'
    done
}

report() { # report md|txt
    local fmt=$1
    local h="" ; [ "$fmt" = md ] && h="### "
    echo "${h}Pass-through proxy benchmark, $DATE"
    echo
    echo "- machine: $(nproc) CPUs ($CPU_MODEL), $(uname -sr); shared machine, figures are noisy"
    echo "- pinning: each proxy on CPU $PROXY_CPU (taskset -c $PROXY_CPU); load generator on CPU $LOAD_CPU; the origin (nginx, fixed ${BODY_SIZE}-byte body) SHARES CPU $LOAD_CPU with the load generator"
    echo "- one proxy under load at a time; ${WARMUP}s warm-up before each ${DURATION}s measured run; rounds: $ROUNDS (the best req/s round of each server shown; all rounds are on stderr)"
    echo "- edgeproxy: $V_EDGE, commit $COMMIT; $V_H2O; $V_NGINX (all with 1 worker thread/process, access log off)"
    echo "- load: $V_WRK; $V_H2LOAD; $V_SSL"
    echo "- HTTP/2 TLS negotiated: edgeproxy ${TLSINFO[edgeproxy]:-?}, h2o ${TLSINFO[h2o]:-?}, nginx ${TLSINFO[nginx]:-?} (ECDSA P-256 self-signed cert)"
    echo "- proxy CPU = CPU time used by the proxy process(es) during the measured run / wall time (100% = CPU $PROXY_CPU saturated; well below 100% means the proxy was not the bottleneck: CPU $LOAD_CPU, shared by the load generator and the origin, was, or another tenant took the core); req/s per CPU = req/s / proxy CPU, the proxy's own efficiency and the figure to compare when a proxy is below 100%"
    echo "- p99: HTTP/1.1 from wrk --latency; HTTP/2 computed from h2load --log-file per-request times (status 2xx/3xx)"
    echo "- reference: origin alone, HTTP/1.1 (wrk and origin on CPU $LOAD_CPU): $ORIGIN_RPS req/s"
    echo
    echo "${h}HTTP/1.1 plain (wrk -t1 -c$CONNS)"
    echo
    table h1 "$fmt"
    echo
    echo "${h}HTTP/2 over TLS (h2load -c$CONNS -m$STREAMS -t1)"
    echo
    table h2 "$fmt"
    echo
    verdict
    echo
    echo "${h}Commands"
    echo
    [ "$fmt" = md ] && echo '```'
    echo "origin:    taskset -c $LOAD_CPU $ORIGIN_CMD"
    echo "edgeproxy: taskset -c $PROXY_CPU $EDGE_CMD"
    echo "h2o:       taskset -c $PROXY_CPU $H2O_CMD"
    echo "nginx:     taskset -c $PROXY_CPU $NGINX_CMD"
    echo "HTTP/1.1:  $WRK_CMD    (warm-up: same with -d${WARMUP}s)"
    echo "HTTP/2:    $H2LOAD_CMD    (warm-up: same with -D $WARMUP)"
    echo "URLs:      edgeproxy ${H1_URL[edgeproxy]} ${H2_URL[edgeproxy]}; h2o ${H1_URL[h2o]} ${H2_URL[h2o]}; nginx ${H1_URL[nginx]} ${H2_URL[nginx]}"
    [ "$fmt" = md ] && echo '```'
    if [ "$fmt" = md ]; then
        echo
        echo "<details><summary>Generated configurations (TMP=$TMP)</summary>"
        echo
        local f
        for f in edgeproxy/edge.yaml h2o/h2o.conf nginx/nginx.conf origin/nginx.conf; do
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
