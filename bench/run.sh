#!/bin/sh
# Run every benchmark once and print its figures (`name: value unit`).
# Not part of the test run. Usage: bench/run.sh   (from anywhere)
# Knobs: BENCH_SECONDS (rpc, per case, default 3), BENCH_INIT_RUNS (10), BENCH_NET_RUNS (5),
#        BENCH_IDLE_SECONDS (10), BENCH_METRICS_SECONDS (30), BENCH_VIZ_RUNS (20),
#        BENCH_STACK_RUNS (5), SWARM_BUILD_DIR (build).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SWARM_BUILD_DIR:-$ROOT/build}
ninja -C "$BUILD" >/dev/null
cd "$ROOT/bench"
echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cpus, git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
for b in bench_init.py bench_rpc.py bench_rss.py bench_metrics.py bench_visualizer.py bench_failover.py bench_workers.py bench_services.py bench_bigscale.py bench_ca_rotate.py bench_images.py bench_network.py bench_stacks.py bench_containers.py bench_mesh.py; do
    echo "## $b"
    SWARM_BUILD_DIR="$BUILD" /usr/bin/python3 "$b"
done
echo "## bench_raft"
"$BUILD/bench/bench_raft" 3
echo "## bench_scheduler"
"$BUILD/bench/bench_scheduler"
echo "## bench_dns"
"$BUILD/bench/bench_dns" 5000
