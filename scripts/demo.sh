#!/usr/bin/env bash
# The main job: build, then bring up a local swarm and show it.
# The swarm keeps running after this script; it prints how to stop it.
#
#   scripts/demo.sh          # start (or restart) the demo swarm
#   scripts/demo.sh stop     # stop it and remove its state (and namespaces)
#
# As root (with iproute2), every node is a host of its own: each swarmd runs
# in a network namespace swdemo-N with its own address 10.199.0.1N on a
# bridge the script makes (in namespace swdemo-br, so nothing of it exists
# in this machine's own network), and a namespace swdemo-client stands for
# "outside". The demo then publishes an HTTP service on port 8000 with the
# ingress routing mesh and reaches it through every node, including the
# managers, which run no task of it. Without root the nodes share loopback
# (127.0.0.11-15) and there is no mesh to show (networking needs root).
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
DEMO=${SWARM_DEMO_DIR:-/tmp/swarmd-demo}
SWARMD=$ROOT/$BUILD_DIR/daemon/swarmd
SWARMCTL=$ROOT/$BUILD_DIR/cli/swarmctl
NS=swdemo
NET=10.199.0
NAMES=(manager1 manager2 manager3 worker1 worker2)
USE_NS=0
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v nsenter >/dev/null; then
    USE_NS=1
fi

ns_remove() {
    # Only the namespaces this script names; their links go with them.
    for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$n" in
            "$NS"-*) ip netns del "$n" 2>/dev/null || true ;;
        esac
    done
}

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
    # Namespaces the nodes left mounted under their state dirs.
    if [ -d "$DEMO" ]; then
        grep -o " $DEMO/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
    fi
    rm -rf "$DEMO"
    if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
        ns_remove
    fi
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

# The lab: a bridge in its own namespace, one namespace per node and one for
# the client, each with an address on the bridge.
make_lab() {
    ip netns add "$NS-br"
    ip -n "$NS-br" link set lo up
    ip -n "$NS-br" link add br0 type bridge
    ip -n "$NS-br" link set br0 up
    local i=0
    for n in "${NAMES[@]}" client; do
        i=$((i + 1))
        local ns=$NS-$i addr=$NET.1$i
        [ "$n" = client ] && ns=$NS-client && addr=$NET.100
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$NS-br" link add "p$i" type veth peer name eth0 netns "$ns"
        ip -n "$NS-br" link set "p$i" master br0
        ip -n "$NS-br" link set "p$i" up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

node_ip() { # NAME -> its address
    local i
    for i in "${!NAMES[@]}"; do
        if [ "${NAMES[$i]}" = "$1" ]; then
            if [ $USE_NS = 1 ]; then echo "$NET.1$((i + 1))"; else echo "127.0.0.1$((i + 1))"; fi
        fi
    done
}

node_ns() { # NAME -> its namespace
    local i
    for i in "${!NAMES[@]}"; do
        [ "${NAMES[$i]}" = "$1" ] && echo "$NS-$((i + 1))"
    done
}

# start_node NAME: one swarmd with its own state dir and address (in its own
# network namespace as root: the network only, mounts are the host's, as on
# a real host).
start_node() {
    local name=$1 ip dir=$DEMO/$1
    ip=$(node_ip "$name")
    mkdir -p "$dir"
    if [ $USE_NS = 1 ]; then
        nsenter --net="/run/netns/$(node_ns "$name")" \
            "$SWARMD" --state-dir "$dir/state" --listen-addr "$ip:2377" --hostname "$name" \
            >"$dir/swarmd.log" 2>&1 &
    else
        "$SWARMD" --state-dir "$dir/state" --listen-addr "$ip:2377" --hostname "$name" \
            >"$dir/swarmd.log" 2>&1 &
    fi
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

if [ $USE_NS = 1 ]; then
    make_lab
else
    echo "not root: the nodes share loopback and no routing mesh is shown (networking needs root)" >&2
fi
for n in "${NAMES[@]}"; do start_node "$n"; done
M1=$(node_ip manager1)
ctl manager1 swarm init --advertise-addr "$M1"
mtoken=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" swarm join-token -q manager)
wtoken=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" swarm join-token -q worker)
ctl manager2 swarm join --token "$mtoken" --advertise-addr "$(node_ip manager2)" "$M1:2377"
ctl manager3 swarm join --token "$mtoken" --advertise-addr "$(node_ip manager3)" "$M1:2377"
ctl worker1 swarm join --token "$wtoken" --advertise-addr "$(node_ip worker1)" "$M1:2377"
ctl worker2 swarm join --token "$wtoken" --advertise-addr "$(node_ip worker2)" "$(node_ip manager2):2377"
# Wait (bounded) until all five nodes are Ready.
for _ in $(seq 200); do
    out=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" node ls 2>/dev/null || true)
    [ "$(echo "$out" | grep -c ' Ready ')" = 5 ] && break
    sleep 0.1
done
echo
ctl manager1 node ls
echo
# The demo service: a program every task runs, printing the time to its log.
ctl manager1 service create -d --name clock --replicas 5 sh -c 'while true; do date; sleep 5; done'
echo
if [ $USE_NS = 1 ]; then
    # A small HTTP server answering with its task's hostname, published on
    # 8000 with the routing mesh, its 2 tasks on the workers only.
    ctl manager1 service create -d --name web --replicas 2 --constraint node.role==worker \
        -p 8000:8080 /usr/bin/python3 -c '
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("hello from task " + socket.gethostname() + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()'
    echo
fi
# Wait (bounded) until the services run all their replicas.
want=1
[ $USE_NS = 1 ] && want=2
for _ in $(seq 150); do
    out=$("$SWARMCTL" --socket "$DEMO/manager1/state/swarmd.sock" service ls 2>/dev/null || true)
    [ "$(echo "$out" | grep -cE ' (5/5|2/2) ')" = $want ] && break
    sleep 0.1
done
ctl manager2 service ls
echo
ctl manager3 service ps clock
echo
if [ $USE_NS = 1 ]; then
    ctl manager3 service ps web
    echo
    echo "Port 8000 on every node, from outside (namespace $NS-client):"
    ok=0
    for n in "${NAMES[@]}"; do
        cmd="ip netns exec $NS-client curl -s --max-time 2 http://$(node_ip "$n"):8000/"
        echo "$ $cmd    # $n"
        # Bounded: the tasks start and the maps reach the nodes within seconds.
        for _ in $(seq 60); do
            if out=$($cmd 2>/dev/null) && [ -n "$out" ]; then
                echo "$out"
                ok=$((ok + 1))
                break
            fi
            sleep 0.5
        done
    done
    echo
    if [ $ok != 5 ]; then
        echo "only $ok of 5 nodes answered on 8000; see $DEMO/*/swarmd.log" >&2
    fi
fi
cat <<MSG
The swarm is running: managers on $(node_ip manager1)-$(node_ip manager3 | awk -F. '{print $4}'), workers on $(node_ip worker1) and $(node_ip worker2),
the service "clock" with 5 replicas (state and logs under $DEMO;
task output in $DEMO/<node>/state-tasks/<task id>/stdout.log).
Talk to any manager:  $SWARMCTL --socket $DEMO/manager2/state/swarmd.sock service ps clock
Try a failure:        kill -9 \$(cat $DEMO/worker1/swarmd.pid); then service ps clock
MSG
if [ $USE_NS = 1 ]; then
    cat <<MSG
The service "web" is published on port 8000 of every node (routing mesh):
  ip netns exec $NS-client curl http://$(node_ip manager1):8000/    (a manager: no task of web)
  ip netns exec $NS-client curl http://$(node_ip worker1):8000/
MSG
fi
echo "Stop it:              scripts/demo.sh stop"
