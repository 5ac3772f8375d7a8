#!/usr/bin/env bash
# The main-job ViT's training step (configs/vit-fashion-mnist.pbtxt: 28x28x1, batch 128 per rank) timed with
# both LibTorch builds in one run, interleaved round by round so machine noise hits both alike: build/
# (Debian's LibTorch 1.13) and build-torch2/ (the torch wheel's 2.x, run on CPU). Prints each round's median
# step and the median over rounds.
# Usage: bash tools/bench/libtorch_versions.sh [rounds] [ranks]     (defaults: 5 rounds, 2 ranks x 1 thread)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
ranks=${2:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
declare -A builds=([1.13]=build/bin/facetrain [2.x]=build-torch2/bin/facetrain)
for v in "${!builds[@]}"; do
  [[ -x ${builds[$v]} ]] || { echo "libtorch_versions: ${builds[$v]} missing (tools/scripts/build.sh, build-libtorch2.sh)" >&2; exit 2; }
done
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for v in 1.13 2.x; do
    line=$(mpirun --oversubscribe --bind-to core --map-by core -np "$ranks" "${builds[$v]}" bench step \
             --config configs/vit-fashion-mnist.pbtxt --image 28 --channels 1 --classes 10 --threads 1 \
             --steps 20 --warmup 3 2>&1 | grep '^bench_step ')
    step=$(sed -E 's/.*step_s=([0-9.]+).*/\1/' <<<"$line")
    gflops=$(sed -E 's/.*gflops=([0-9.]+) .*/\1/' <<<"$line")
    matmul=$(sed -E 's/.*matmul_gflops=([0-9.]+).*/\1/' <<<"$line")
    echo "round $r LibTorch $v: step $step s, $gflops GFLOP/s per rank, matmul $matmul GFLOP/s"
    echo "$v $step $gflops $matmul" >>"$results"
  done
done
echo "medians over $rounds rounds ($ranks ranks x 1 thread, batch 128 per rank):"
for v in 1.13 2.x; do
  awk -v v="$v" '$1 == v { s[n + 0] = $2; g[n + 0] = $3; m[n + 0] = $4; n++ }
    function med(a, n,   i, j, t) { for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                    return n % 2 ? a[int(n / 2)] : (a[n / 2 - 1] + a[n / 2]) / 2 }
    END { printf "  LibTorch %-4s step %.4f s  (%.0f images/s over the ranks), %.1f GFLOP/s per rank, matmul %.1f GFLOP/s\n",
          v, med(s, n), 128 * '"$ranks"' / med(s, n), med(g, n), med(m, n) }' "$results"
done
