#!/usr/bin/env bash
# The main job: build, then bring up a local swarm on loopback and show it.
# The swarm keeps running after this script; it prints how to stop it.
#
#   scripts/demo.sh          # start (or restart) the demo swarm
#   scripts/demo.sh stop     # stop it and remove its state
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
DEMO=${SWARM_DEMO_DIR:-/tmp/swarmd-demo}
SWARMD=$ROOT/$BUILD_DIR/daemon/swarmd
SWARMCTL=$ROOT/$BUILD_DIR/cli/swarmctl

stop_demo() {
    for pidfile in "$DEMO"/*/swarmd.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$pidfile"
    done
    rm -rf "$DEMO"
}

if [ "${1:-}" = stop ]; then
    stop_demo
    echo "demo swarm stopped"
    exit 0
fi

[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" >/dev/null
ninja -C "$BUILD_DIR" >/dev/null

stop_demo
mkdir -p "$DEMO"

# start_node NAME IP: one swarmd with its own state dir and 127.0.0.N address.
start_node() {
    local name=$1 ip=$2 dir=$DEMO/$1
    mkdir -p "$dir"
    "$SWARMD" --state-dir "$dir/state" --listen-addr "$ip:2377" --hostname "$name" \
        >"$dir/swarmd.log" 2>&1 &
    echo $! >"$dir/swarmd.pid"
    for _ in $(seq 100); do
        "$SWARMCTL" --socket "$dir/state/swarmd.sock" info >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "swarmd $name did not start; see $dir/swarmd.log" >&2
    exit 1
}

ctl() {
    local name=$1
    shift
    echo "$ swarmctl $(printf "%q " "$@")" >&2
    "$SWARMCTL" --socket "$DEMO/$name/state/swarmd.sock" "$@"
}

start_node manager1 127.0.0.11
start_node manager2 127.0.0.12
start_node manager3 127.0.0.13
start_node worker1 127.0.0.14
start_node worker2 127.0.0.15
ctl manager1 swarm init --advertise-addr 127.0.0.11
mtoken=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" swarm join-token -q manager)
wtoken=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" swarm join-token -q worker)
ctl manager2 swarm join --token "$mtoken" --advertise-addr 127.0.0.12 127.0.0.11:2377
ctl manager3 swarm join --token "$mtoken" --advertise-addr 127.0.0.13 127.0.0.11:2377
ctl worker1 swarm join --token "$wtoken" --advertise-addr 127.0.0.14 127.0.0.11:2377
ctl worker2 swarm join --token "$wtoken" --advertise-addr 127.0.0.15 127.0.0.12:2377
# Wait (bounded) until all five nodes are Ready.
for _ in $(seq 100); do
    out=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" node ls 2>/dev/null || true)
    [ "$(echo "$out" | grep -c ' Ready ')" = 5 ] && break
    sleep 0.1
done
echo
ctl manager1 node ls
echo
# The demo service: a program every task runs, printing the time to its log.
ctl manager1 service create --name clock --replicas 5 sh -c 'while true; do date; sleep 5; done'
echo
ctl manager2 service ls
echo
ctl manager3 service ps clock
echo
cat <<MSG
The swarm is running: managers on 127.0.0.11-13, workers on 127.0.0.14-15,
and the service "clock" with 5 replicas (state and logs under $DEMO;
task output in $DEMO/<node>/state/worker/tasks/<task id>/stdout.log).
Talk to any manager:  $SWARMCTL --socket $DEMO/manager2/state/swarmd.sock service ps clock
Try a failure:        kill -9 \$(cat $DEMO/worker1/swarmd.pid); then service ps clock
Stop it:              scripts/demo.sh stop
MSG
