#!/usr/bin/env bash
# The BLAS kernels that fit the CPU (launcher/blas_restart.h), through the binary as a user starts it:
#  1. OpenBLAS on generic kernels: the process restarts once with OPENBLAS_CORETYPE for this CPU (Haswell with
#     AVX2, SkylakeX with AVX-512), alone and as 2 mpirun ranks (each restarts before MPI_Init), and the
#     start-up line names the BLAS, the kernels, why, and the measured matmul rates;
#  2. a user's own OPENBLAS_CORETYPE is kept, even a generic one (no restart);
#  3. a restarted process whose kernels are still generic does not restart again (no loop).
# The generic kernels are real, not pretended: FACETRAIN_TEST_OPENBLAS_FALLBACK=1 with OPENBLAS_CORETYPE=Prescott
# makes OpenBLAS load Prescott's kernels, as it does by itself on a CPU it does not know, and tells facetrain
# that the setting stands for that fallback rather than for a user's choice.
# Skips (77) where the BLAS is not OpenBLAS (the torch wheel's MKL) or the CPU has no AVX2.
# Usage: blas_restart.sh FACETRAIN_BINARY SOURCE_DIR
set -uo pipefail
ft=$1 src=$2
source "$(dirname "$0")/../lib/skip.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OPENBLAS_CORETYPE FACETRAIN_BLAS_RESTARTED_FROM FACETRAIN_TEST_OPENBLAS_FALLBACK
fail=0
tiny=(bench step --config "$src/configs/vit-fashion-mnist.pbtxt" --set data.store=/nonexistent.h5 --image 8
      --channels 1 --classes 3 --set model.vit.patch_size=4 --set data.batch_size=4 --steps 1 --warmup 0
      --threads 1)
run() {  # run LOG command... : the command under a timeout (a restart loop would never end)
  local log=$1; shift
  timeout 120 "$@" > "$log" 2>&1
}
# "[rank R] cpu NAME (FLAGS), blas OpenBLAS V, CORE kernels (WHY), matmul 256^3 on 1 thread: fp32 X GFLOP/s, ..."
rate='matmul 256\^3 on 1 thread: fp32 [0-9]+\.[0-9] GFLOP/s, bf16 [0-9]+\.[0-9] GFLOP/s'
expect() {  # expect NAME LOG RANKS CORE WHY: every rank's start-up line names CORE for reason WHY, with rates
  local name=$1 log=$2 ranks=$3 core=$4 why=$5
  local n
  n=$(grep -cE "^\[rank [0-9]\] cpu .*, blas OpenBLAS [0-9.]+, $core kernels \($why\), $rate" "$log")
  if [[ $n -ne $ranks ]] || ! grep -qE "^bench_step .* blas_core=$core$" "$log"; then
    echo "FAIL $name: expected $ranks start-up line(s) with $core kernels ($why) and blas_core=$core:"
    cat "$log"; fail=1; return
  fi
  echo "ok   $name: $(grep -m1 -E '^\[rank 0\] cpu ' "$log")"
}

# Whether OpenBLAS is under LibTorch, asked of the dynamic linker rather than of facetrain's own line.
ldd "$ft" | grep -q openblas || skip "the BLAS under LibTorch is not OpenBLAS (ldd: no libopenblas)"
if grep -qw avx512f /proc/cpuinfo; then fit=SkylakeX
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then fit=Haswell
else skip "this CPU has no AVX2: OpenBLAS's generic kernels are the ones it can run"; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run "$work/plain.log" "$ft" "${tiny[@]}" || { cat "$work/plain.log"; echo "FAIL: bench step"; exit 1; }
# Without a setting: OpenBLAS's choice, or, on a CPU it does not know (the issue's Xeon), already the restart.
own="OpenBLAS's choice|restarted once with OPENBLAS_CORETYPE=$fit: OpenBLAS had fallen back to [A-Za-z0-9_]+ on this CPU"
grep -qE "^\[rank 0\] cpu .*, blas OpenBLAS [0-9.]+, [A-Za-z0-9_]+ kernels \(($own)\), $rate" "$work/plain.log" ||
  { cat "$work/plain.log"; echo "FAIL: no start-up line naming OpenBLAS, its kernels and the matmul rates"; exit 1; }
echo "ok   without a setting: $(grep -m1 -E '^\[rank 0\] cpu ' "$work/plain.log")"

# 1. Generic kernels: one restart, alone and on 2 ranks.
fallback=(env OPENBLAS_CORETYPE=Prescott FACETRAIN_TEST_OPENBLAS_FALLBACK=1)
restarted="restarted once with OPENBLAS_CORETYPE=$fit: OpenBLAS had fallen back to Prescott on this CPU"
run "$work/one.log" "${fallback[@]}" "$ft" "${tiny[@]}" || { cat "$work/one.log"; echo "FAIL: restart, 1 rank"; fail=1; }
expect "generic kernels -> restarted with $fit" "$work/one.log" 1 "$fit" "$restarted"
run "$work/two.log" mpirun --oversubscribe --bind-to none -np 2 "${fallback[@]}" "$ft" "${tiny[@]}" ||
  { cat "$work/two.log"; echo "FAIL: restart, 2 ranks"; fail=1; }
expect "2 mpirun ranks, each restarted before MPI_Init" "$work/two.log" 2 "$fit" "$restarted"

# 2. The user's choice wins, generic or not.
run "$work/user.log" env OPENBLAS_CORETYPE=Prescott "$ft" "${tiny[@]}" || { cat "$work/user.log"; fail=1; }
expect "a user's OPENBLAS_CORETYPE=Prescott is kept" "$work/user.log" 1 Prescott "your OPENBLAS_CORETYPE=Prescott, kept"

# 3. Once: a restarted process (the marker set) that still runs generic kernels goes on with them.
run "$work/again.log" env OPENBLAS_CORETYPE=Prescott FACETRAIN_BLAS_RESTARTED_FROM=Prescott \
  FACETRAIN_TEST_OPENBLAS_FALLBACK=1 "$ft" "${tiny[@]}" || { cat "$work/again.log"; fail=1; }
expect "no second restart" "$work/again.log" 1 Prescott \
  "kept by OpenBLAS after a restart with OPENBLAS_CORETYPE=Prescott"
exit $fail
