# Shared by the benchmark scripts (sourced, not run). The caller sets BENCH (its name, for messages) and REPO, and
# declares the associative array pkg_of (tool -> Debian package) before bench_tools.

die() { echo "$BENCH: error: $*" >&2; exit 1; }
log() { echo "$BENCH: $*" >&2; }

# bench_tools: installs the Debian packages of missing tools (pkg_of) when running as root, else names them.
bench_tools() {
    local t missing=()
    export PATH=$PATH:/usr/sbin
    for t in "${!pkg_of[@]}"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("${pkg_of[$t]}")
    done
    ((${#missing[@]})) || return 0
    [ "$(id -u)" -eq 0 ] || die "missing package(s): ${missing[*]} (run as root to install them, or apt-get install them)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "could not install ${missing[*]}"
    # the packages may start system services (nginx on port 80, varnish, hitch); the benchmarks run their own
    if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx varnish hitch >/dev/null 2>&1 || true; fi
    [ -f /run/nginx.pid ] && kill "$(cat /run/nginx.pid)" 2>/dev/null || true
}

# bench_build: sets EDGEPROXY, building the working tree into build-bench/ (Release) unless it is set already.
bench_build() {
    if [ -z "${EDGEPROXY:-}" ]; then
        log "building edgeproxy (Release) into $REPO/build-bench"
        cmake -S "$REPO" -B "$REPO/build-bench" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null ||
            die "cmake configure failed"
        cmake --build "$REPO/build-bench" --target edgeproxy -j2 >/dev/null || die "edgeproxy build failed"
        EDGEPROXY="$REPO/build-bench/edgeproxy"
    fi
    [ -x "$EDGEPROXY" ] || die "edgeproxy binary not found: $EDGEPROXY"
}

# bench_tmp PREFIX: makes TMP and arranges for every process started with start() to be stopped, and TMP removed
# (unless KEEP_TMP=1), on any exit, Ctrl-C included.
PIDS=()
bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
bench_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# bench_ports FIRST COUNT: fails when one of the COUNT ports from FIRST is in use.
bench_ports() {
    local p
    for p in $(seq "$1" $(($1 + $2 - 1))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (set PORT_BASE)"; fi
    done
}

# start NAME CPU CMD...: runs CMD pinned to CPU in its own session, output in $TMP/NAME.{out,err}; pid_of NAME.
start() {
    local name=$1 cpu=$2; shift 2
    setsid taskset -c "$cpu" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}
pid_of() { eval echo "\$PID_${1//-/_}"; }

# wait_http NAME URL: polls until URL answers (any status), or fails after 15 s.
wait_http() {
    local name=$1 url=$2 pid
    pid=$(pid_of "$name")
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.err" "$TMP/$name.out" >&2; die "$name exited during start-up"; }
        curl -sk -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    cat "$TMP/$name.err" >&2
    die "$name did not answer on $url within 15 s"
}

# cpu_ticks PID...: utime+stime of the PIDs and their direct children (nginx's worker, Varnish's child), in ticks.
cpu_ticks() {
    local total=0 p f pid
    for pid in "$@"; do
        for p in "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
            f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
            set -- $f
            total=$((total + ${12} + ${13}))
        done
    done
    echo "$total"
}

now() { date +%s.%N; }

# to_ms VALUE: wrk's "1.23ms" / "456.78us" / "1.02s" -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.2f", n }'
}

# median: the median of the numbers on stdin, one per line (the mean of the middle two for an even count)
median() { sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# median_of "N N N ...": the median of a space-separated list
median_of() { tr ' ' '\n' <<<"$1" | median; }

# bench_load PROTO URL SECONDS PID [HEADER]: one bounded load run on LOAD_CPU, failing on any error answer;
#   h1: wrk -t1 -c$H1_CONNS; h2: h2load -c$H2_CONNS -m$H2_STREAMS -t1, TLS 1.3 with AES-128-GCM.
# Prints "REQ_PER_S CPU%", the CPU% being PID's (and its children's) share of the run's wall time.
bench_load() {
    local proto=$1 url=$2 secs=$3 pid=$4 hdr=${5:-} out rps c0 c1 t0 t1
    local -a h=()
    [ -n "$hdr" ] && h=(-H "$hdr")
    c0=$(cpu_ticks "$pid")
    t0=$(now)
    if [ "$proto" = h1 ]; then
        out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$H1_CONNS" -d"${secs}s" "${h[@]}" "$url" 2>&1) || die "wrk failed: $out"
        grep -q 'Non-2xx' <<<"$out" && die "non-2xx answers from $url: $out"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    else
        out=$(taskset -c "$LOAD_CPU" h2load -c"$H2_CONNS" -m"$H2_STREAMS" -t1 -D "$secs" --tls13-ciphers=TLS_AES_128_GCM_SHA256 \
            "${h[@]}" "$url" 2>&1) || die "h2load failed: $out"
        awk '/^status codes:/ { if ($5 != 0 || $7 != 0 || $9 != 0) exit 1 }' <<<"$out" || die "errors from $url: $out"
        rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<<"$out")
    fi
    t1=$(now)
    c1=$(cpu_ticks "$pid")
    [ -n "$rps" ] || die "could not parse the load generator's output: $out"
    awk -v r="$rps" -v c=$((c1 - c0)) -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.0f\n", r, 100 * c / hz / (t1 - t0) }'
}
