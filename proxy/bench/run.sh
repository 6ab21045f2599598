#!/usr/bin/env bash
# The weir-proxy benchmark: direct vs weir-proxy vs nginx vs haproxy, one run, one machine.
#
#   proxy/bench/run.sh            # prints the table and writes it to docs/benchmarks.md ("## Proxy")
#
# Everything listens on 127.0.0.1 and every load run is bounded in time. Each proxy gets one
# worker (weir --threads 1, nginx worker_processes 1, haproxy nbthread 1) pinned to the last
# CPU; the load generators and the two backends are pinned to the other CPUs.
# Knobs (env): RATE (1000), LAT_SECS (20, per round), ROUNDS (2), TPUT_SECS (10), TPUT_CONNS (64), NO_DOCS=1, SKIP_BUILD=1.
set -euo pipefail

RATE=${RATE:-1000}
LAT_SECS=${LAT_SECS:-20}
TPUT_SECS=${TPUT_SECS:-10}
TPUT_CONNS=${TPUT_CONNS:-64}
ROUNDS=${ROUNDS:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$ROOT/proxy/bench
OUT=$(mktemp -d /tmp/weir-bench.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM

need() { command -v "$1" >/dev/null 2>&1; }
install_missing() {
    local pkgs=()
    need wrk || pkgs+=(wrk)
    need nginx || pkgs+=(nginx-light)
    need haproxy || pkgs+=(haproxy)
    need h2load || pkgs+=(nghttp2-client)
    if ((${#pkgs[@]})); then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get install -y "${pkgs[@]}"
    fi
}
install_missing
PATH=$PATH:/usr/sbin

NCPU=$(nproc)
PROXY_CPU=$((NCPU - 1))
LOAD_CPUS=0-$((NCPU > 1 ? NCPU - 2 : 0))
pin_load() { taskset -c "$LOAD_CPUS" "$@"; }
# Starts a pinned background process; its PID (taskset execs it) goes to LAST and PIDS.
bg_pin() { local cpus=$1; shift; taskset -c "$cpus" "$@" & LAST=$!; PIDS+=("$LAST"); }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building (release)..." >&2
    (cd "$ROOT" && cargo build --release -p weir-proxy --bin weir-proxy --example bench_backend)
fi
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
PROXY_BIN=$TARGET/release/weir-proxy
BACKEND_BIN=$TARGET/release/examples/bench_backend

V1=18081 V2=18082 WEIR=18090 WEIR_ADMIN=18091 NGINX=18092 HAPROXY=18093

bg_pin "$LOAD_CPUS" "$BACKEND_BIN" 127.0.0.1:$V1 v1; V1_PID=$LAST
bg_pin "$LOAD_CPUS" "$BACKEND_BIN" 127.0.0.1:$V2 v2

sed -e "s/@V1@/$V1/g" -e "s/@V2@/$V2/g" "$BENCH/weir.yaml" >"$OUT/weir.yaml"
RUST_LOG=warn bg_pin "$PROXY_CPU" "$PROXY_BIN" --threads 1 --listen 127.0.0.1:$WEIR --admin 127.0.0.1:$WEIR_ADMIN \
    --namespace bench --config-file "$OUT/weir.yaml" 2>"$OUT/weir.log"; WEIR_PID=$LAST

mkdir -p "$OUT/nginx"
sed -e "s/@V1@/$V1/g" -e "s/@V2@/$V2/g" -e "s/@PORT@/$NGINX/g" -e "s#@OUT@#$OUT/nginx#g" \
    "$BENCH/nginx.conf" >"$OUT/nginx/nginx.conf"
bg_pin "$PROXY_CPU" nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/error.log"; NGINX_PID=$LAST

sed -e "s/@V1@/$V1/g" -e "s/@V2@/$V2/g" -e "s/@PORT@/$HAPROXY/g" "$BENCH/haproxy.cfg" >"$OUT/haproxy.cfg"
bg_pin "$PROXY_CPU" haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1; HAPROXY_PID=$LAST

wait_http() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null -H 'Host: foobar' "http://127.0.0.1:$1/" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    return 1
}
for p in $V1 $V2 $WEIR $NGINX $HAPROXY; do wait_http "$p"; done

count() { curl -fsS "http://127.0.0.1:$1/__count"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
user_ticks() { awk '{print $14}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# nginx forks a worker: measure the worker (the only process that serves).
nginx_worker() { pgrep -P "$NGINX_PID" | head -1; }

# Added latency at a fixed rate: h2load (HTTP/1.1), 10 clients x RATE/10 rps each, per-request log.
latency_run() { # name port: appends to the target's log
    pin_load h2load --h1 -c 10 -t 1 --rps $((RATE / 10)) -D "$LAT_SECS" --log-file="$OUT/run.log" \
        -H ':authority: foobar' "http://127.0.0.1:$2/" >>"$OUT/h2load-$1.txt" 2>&1
    cat "$OUT/run.log" >>"$OUT/lat-$1.log"
    rm -f "$OUT/run.log"
}
percentiles() { # name -> "p50 p99 p999 n" in ms, over every round
    awk '$2 == 200 {print $3}' "$OUT/lat-$1.log" | sort -n | awk '
        {v[NR] = $1}
        END {
            if (NR == 0) { print "n/a n/a n/a 0"; exit }
            i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
            i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
            i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
            printf "%.3f %.3f %.3f %d\n", v[i50] / 1000, v[i99] / 1000, v[i999] / 1000, NR
        }'
}

# Max throughput: wrk, one thread, TPUT_CONNS keep-alive connections.
throughput() { # name port pid -> "rps max_rss_kb share_v2 cpu_us_per_request user_us_per_request"
    local before1 before2 rss=0 r pid ticks0 user0 serving=$3
    [ "$1" = nginx ] && serving=$(nginx_worker)
    before1=$(count $V1) before2=$(count $V2) ticks0=$(cpu_ticks "$serving") user0=$(user_ticks "$serving")
    pin_load wrk -t1 -c "$TPUT_CONNS" -d "${TPUT_SECS}s" -H 'Host: foobar' "http://127.0.0.1:$2/" >"$OUT/wrk-$1.txt" 2>&1 &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        pid=$3
        [ "$1" = nginx ] && pid=$(nginx_worker)
        if [ -n "$pid" ]; then r=$(rss_kb "$pid"); [ "${r:-0}" -gt "$rss" ] && rss=$r; fi
        sleep 0.5
    done
    wait "$wrk_pid" || true
    local ticks1 user1
    ticks1=$(cpu_ticks "$serving") user1=$(user_ticks "$serving")
    local d1=$(($(count $V1) - before1)) d2=$(($(count $V2) - before2))
    local cpu
    cpu=$(awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$((d1 + d2))" 'BEGIN { if (n == 0) print "n/a"; else printf "%.1f", t / hz * 1e6 / n }')
    local user
    user=$(awk -v t="$((user1 - user0))" -v hz="$(getconf CLK_TCK)" -v n="$((d1 + d2))" 'BEGIN { if (n == 0) print "n/a"; else printf "%.1f", t / hz * 1e6 / n }')
    local rps
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$1.txt")
    local share
    share=$(awk -v a="$d1" -v b="$d2" 'BEGIN { if (a + b == 0) print "n/a"; else printf "%.2f%%", 100 * b / (a + b) }')
    echo "${rps:-0} $rss $share $cpu $user"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A LAT TPUT
TARGETS="direct:$V1:$V1_PID weir:$WEIR:$WEIR_PID nginx:$NGINX:$NGINX_PID haproxy:$HAPROXY:$HAPROXY_PID"
# ROUNDS interleaved rounds, so that noise from other work on the machine hits every target alike.
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round/$ROUNDS: latency at $RATE rps for ${LAT_SECS}s per target..." >&2
    for t in $TARGETS; do IFS=: read -r name port _ <<<"$t"; latency_run "$name" "$port"; done
done
for t in $TARGETS; do
    IFS=: read -r name _ _ <<<"$t"
    LAT[$name]=$(percentiles "$name")
    echo "  $name: ${LAT[$name]}" >&2
done
# Throughput: best of ROUNDS interleaved runs per target (RSS: largest seen).
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round/$ROUNDS: throughput for ${TPUT_SECS}s per target..." >&2
    for t in $TARGETS; do
        IFS=: read -r name port pid <<<"$t"
        r=$(throughput "$name" "$port" "$pid")
        echo "  $name: $r" >&2
        if [ -z "${TPUT[$name]:-}" ]; then TPUT[$name]=$r; continue; fi
        read -r rps0 rss0 share0 cpu0 user0 <<<"${TPUT[$name]}"
        read -r rps1 rss1 share1 cpu1 user1 <<<"$r"
        rss=$((rss0 > rss1 ? rss0 : rss1))
        if awk -v a="$rps1" -v b="$rps0" 'BEGIN {exit !(a > b)}'; then TPUT[$name]="$rps1 $rss $share1 $cpu1 $user1"; else TPUT[$name]="$rps0 $rss $share0 $cpu0 $user0"; fi
    done
done

read -r d50 d99 d999 _ <<<"${LAT[direct]}"
row() { # name label
    local p50 p99 p999 n rps rss share cpu user
    read -r p50 p99 p999 n <<<"${LAT[$1]}"
    read -r rps rss share cpu user <<<"${TPUT[$1]}"
    local a50 a99 a999
    a50=$(awk -v a="$p50" -v b="$d50" 'BEGIN {printf "%+.3f", a - b}')
    a99=$(awk -v a="$p99" -v b="$d99" 'BEGIN {printf "%+.3f", a - b}')
    a999=$(awk -v a="$p999" -v b="$d999" 'BEGIN {printf "%+.3f", a - b}')
    local rss_mb
    rss_mb=$(awk -v r="$rss" 'BEGIN { if (r == 0) print "—"; else printf "%.1f", r / 1024 }')
    if [ "$1" = direct ]; then a50="—" a99="—" a999="—" rss_mb="—"; share="—"; fi
    echo "| $2 | $p50 / $p99 / $p999 | $a50 / $a99 / $a999 | $rps | $cpu ($user) | $rss_mb | $share |"
}

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TABLE=$OUT/proxy.md
{
    echo "## Proxy"
    echo
    echo "Run: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); load average $LOAD_BEFORE before and $LOAD_AFTER after (the machine was shared with other work, so absolute numbers are noisy — compare rows of the same run)."
    echo "Proxies pinned to CPU $PROXY_CPU with one worker each; load generators and backends on CPUs $LOAD_CPUS. Split 90/10 between two local backends (\`proxy/examples/bench_backend.rs\`). weir-proxy runs with access control and resilience on, as in production (\`proxy/bench/weir.yaml\`): the load generators' address is a Pod, a TrafficTarget with an HTTPRouteGroup rule allows it, and a TrafficPolicy on the route sets a timeout and retries (\`attempts: 2\`, gateway errors and connect failures) under the default budget."
    echo
    echo "| target | latency p50 / p99 / p99.9 ms at $RATE rps | added vs direct (ms) | max rps (1 worker) | CPU µs / request (user) | RSS under load (MB) | canary share (want 10%) |"
    echo "|---|---|---|---|---|---|---|"
    row direct "direct to backend v1"
    row weir "weir-proxy (\`--threads 1\`, p2c-ewma, TrafficTarget + retry policy)"
    row nginx "nginx $(nginx -v 2>&1 | sed 's#.*/##') (weighted upstream, 1 worker)"
    row haproxy "haproxy $(haproxy -v | head -1 | awk '{print $3}') (weights 90/10, nbthread 1)"
    echo
    echo "Commands (from \`proxy/bench/run.sh\`; configs in \`proxy/bench/\`):"
    echo
    echo '```sh'
    echo "# fixed rate: $RATE rps, $ROUNDS interleaved rounds of ${LAT_SECS}s per target; percentiles over all rounds' per-request logs"
    echo "h2load --h1 -c 10 -t 1 --rps $((RATE / 10)) -D $LAT_SECS --log-file=lat.log -H ':authority: foobar' http://127.0.0.1:PORT/"
    echo "# max throughput, one wrk thread; best of $ROUNDS interleaved runs"
    echo "wrk -t1 -c $TPUT_CONNS -d ${TPUT_SECS}s -H 'Host: foobar' http://127.0.0.1:PORT/"
    echo "# proxies"
    echo "weir-proxy --threads 1 --listen 127.0.0.1:$WEIR --admin 127.0.0.1:$WEIR_ADMIN --namespace bench --config-file weir.yaml"
    echo "nginx -p DIR -c nginx.conf      # worker_processes 1; upstream weight=9 / weight=1; keepalive"
    echo "haproxy -db -f haproxy.cfg      # nbthread 1; roundrobin weights 90/10; http-reuse always"
    echo '```'
    echo
    echo "RSS is the largest VmRSS sampled every 0.5 s during the throughput runs (for nginx, its worker process). CPU µs / request is the serving process's user+system time (/proc/PID/stat) over the requests the backends answered during the reported throughput run, with the user part in parentheses; it depends less on the neighbours than requests per second, but its system part includes waking the receiver of every loopback write, which costs more when the receiver sleeps (for the direct row it is the backend's own cost). Canary share is measured at the backends during the throughput run."
} >"$TABLE"
cat "$TABLE"

if [ "${NO_DOCS:-0}" != 1 ]; then
    python3 - "$ROOT/docs/benchmarks.md" "$TABLE" <<'PY'
import re, sys, pathlib
doc, table = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_text()
text = doc.read_text() if doc.exists() else "# Benchmarks\n"
m = re.search(r"^## Proxy\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
text = text[:m.start()] + table + "\n" + text[m.end():] if m else text.rstrip("\n") + "\n\n" + table
doc.write_text(text)
PY
    echo "wrote docs/benchmarks.md (section Proxy); raw output in $OUT" >&2
fi
