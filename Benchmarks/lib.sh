# Shared by the benchmark scripts (source it after `cd` to the repository):
#   bench_work NAME   a work directory $work (removed on exit) and $pids, the processes to stop on exit
#   free_port         a free loopback port
#   wait_ready FILE   waits (60 s at most) until the `strive serve` writing FILE says it is ready

bench_work() {
    work="$(mktemp -d "/tmp/$1.XXXXXX")"
    chmod 755 "$work"
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() {
    for _ in $(seq 1 600); do
        grep -q "Strive is ready" "$1" 2> /dev/null && return 0
        sleep 0.1
    done
    return 1
}
