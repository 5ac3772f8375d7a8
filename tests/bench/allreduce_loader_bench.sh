#!/usr/bin/env bash
# `facetrain bench allreduce` on 2 MPI ranks (three sizes, then --overlap) prints one table row per size and
# both overlap settings, and --backend nccl without NCCL or a GPU is one line; `facetrain bench loader` on a store it generates prints its rows and the kernel.
# Shapes of the output only: timing belongs to the benchmarks, never to a test's assertion.
# Usage: allreduce_loader_bench.sh FACETRAIN_BINARY
set -uo pipefail
ft=$1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

out=$(mpirun --oversubscribe --bind-to none -np 2 "$ft" bench allreduce --min-bytes 1024 --max-bytes 16384 \
      --reps 3 --overlap --overlap-steps 2 2>&1); code=$?
rows=$(grep -cE '^ +(1024|4096|16384)  \| +[0-9.]+ ' <<<"$out")
if [[ $code -ne 0 || $rows -ne 3 ]] || [[ $(grep -c 'progress in hooks o' <<<"$out") -ne 2 ]]; then
  echo "FAIL allreduce: exit $code, $rows of 3 size rows: $out"; fail=1
else echo "ok   allreduce: 3 size rows, both overlap settings"; fi

# --backend nccl where it cannot run (no NCCL in the build, or no GPU on a rank): one line naming why, exit 2 on
# both ranks, no table. (With a GPU, tools/scripts/gpu-check.sh runs the table.)
out=$(mpirun --oversubscribe --bind-to none -np 2 "$ft" bench allreduce --backend nccl --max-bytes 4096 2>&1); code=$?
if [[ $code -ne 2 ]] || ! grep -qE -- '--backend nccl: (this build has no NCCL|rank [01] on .* sees no GPU)' <<<"$out" ||
   grep -q 'algbw' <<<"$out"; then
  echo "FAIL allreduce --backend nccl without a GPU: exit $code: $out"; fail=1
else echo "ok   allreduce --backend nccl: $(grep -oE -- '--backend nccl: [^;(]*' <<<"$out" | head -1)"; fi
out=$(mpirun --oversubscribe --bind-to none -np 2 "$ft" bench allreduce --backend gloo 2>&1); code=$?
if [[ $code -ne 2 ]] || ! grep -q -- "--backend must be mpi or nccl (got 'gloo')" <<<"$out"; then
  echo "FAIL allreduce --backend gloo: exit $code: $out"; fail=1
else echo "ok   allreduce --backend gloo: one line"; fi

out=$("$ft" bench loader "$work/noise.h5" --generate 200 --size 16 --channels 3 --batch 8 --seconds 0.05 \
      --repeats 1 2>&1); code=$?
if [[ $code -ne 0 ]] || ! grep -q '^memcpy (ceiling) ' <<<"$out" ||
   ! grep -q '^uint8 for the device, augmented ' <<<"$out" || ! grep -q 'Augmentation kernel: ' <<<"$out"; then
  echo "FAIL loader: exit $code: $out"; fail=1
else echo "ok   loader: its rows and the augmentation kernel"; fi
exit $fail
