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
    echo "\$ swarmctl $*" >&2
    "$SWARMCTL" --socket "$DEMO/$name/state/swarmd.sock" "$@"
}

start_node manager1 127.0.0.11
start_node manager2 127.0.0.12
start_node manager3 127.0.0.13
ctl manager1 swarm init --advertise-addr 127.0.0.11
token=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" swarm join-token -q manager)
ctl manager2 swarm join --token "$token" --advertise-addr 127.0.0.12 127.0.0.11:2377
ctl manager3 swarm join --token "$token" --advertise-addr 127.0.0.13 127.0.0.11:2377
# Wait (bounded) until every manager is Ready and reachable.
for _ in $(seq 100); do
    out=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" node ls 2>/dev/null || true)
    [ "$(echo "$out" | grep -c 'Ready.*\(Leader\|Reachable\)')" = 3 ] && break
    sleep 0.1
done
echo
ctl manager1 node ls
echo
ctl manager2 info
echo
cat <<MSG
The swarm is running: 3 managers on 127.0.0.11-13 (state and logs under $DEMO).
Talk to any of them:  $SWARMCTL --socket $DEMO/manager2/state/swarmd.sock node ls
Try a failover:       kill -9 \$(cat $DEMO/manager1/swarmd.pid); then node ls on manager2
Stop it:              scripts/demo.sh stop
MSG
