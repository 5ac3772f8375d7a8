#!/usr/bin/env bash
# `facetrain bench step` on 2 MPI ranks: a tiny ViT (fp32 and bf16 autocast) and a DCGAN run their trainer
# step on random batches and print the key=value line with a positive step time; fp16 on a CPU and a
# missing store without shape flags are one-line user errors (exit 2).
# Usage: step_bench.sh FACETRAIN_BINARY SOURCE_DIR
set -uo pipefail
ft=$1 src=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --bind-to none -np 2)
fail=0
tiny=(--set data.store=/nonexistent.h5 --image 8 --channels 1 --classes 3 --steps 3 --warmup 1 --threads 1)
check() {  # check NAME -- command...
  local name=$1; shift 2
  local out
  if ! out=$("$@" 2>&1); then echo "FAIL $name: $out"; fail=1; return; fi
  if ! grep -qE "^bench_step kind=[a-z]+ ranks=2 .* step_s=[0-9.]+ images_per_s=[0-9.]+" <<<"$out" ||
     grep -qE "step_s=0\.0000 " <<<"$out"; then
    echo "FAIL $name: no step figures in: $out"; fail=1; return
  fi
  echo "ok   $name: $(grep '^bench_step' <<<"$out")"
  [[ $name != dcgan ]] || grep -qE "buckets_overlapped=[1-9]" <<<"$out" ||
    { echo "FAIL dcgan: no bucket all-reduce overlapped backward"; fail=1; }
}
check vit-fp32 -- "${mpi[@]}" "$ft" bench step --config "$src/configs/vit-fashion-mnist.pbtxt" "${tiny[@]}" \
  --set model.vit.patch_size=4 --set data.batch_size=8
check vit-bf16 -- "${mpi[@]}" "$ft" bench step --config "$src/configs/vit-fashion-mnist.pbtxt" "${tiny[@]}" \
  --set model.vit.patch_size=4 --set data.batch_size=8 --set distributed.precision=bf16
# Overlap that happens: a shipped model's first gradient bucket is all-reduced while backward still runs
# (distributed.first_bucket_mb; the main-job ViT and the DCGAN are each smaller than one 25 MB bucket).
overlap() {  # overlap NAME -- command...
  local name=$1; shift 2
  local out
  out=$("$@" 2>&1)
  if grep -qE "^bench_step .* buckets=[0-9]+ buckets_overlapped=[1-9]" <<<"$out"; then
    echo "ok   $name: $(grep -o 'buckets=.*' <<<"$out")"
  else echo "FAIL $name: no bucket all-reduce overlapped backward: $out"; fail=1; fi
}
overlap vit-main-job-overlap -- "${mpi[@]}" "$ft" bench step --config "$src/configs/vit-fashion-mnist.pbtxt" \
  --set data.store=/nonexistent.h5 --image 28 --channels 1 --classes 10 --steps 2 --warmup 1 --threads 1 \
  --set data.batch_size=8
check dcgan -- "${mpi[@]}" "$ft" bench step --config "$src/configs/dcgan-fashion-mnist.pbtxt" \
  --set data.store=/nonexistent.h5 --image 32 --channels 1 --classes 10 --steps 2 --warmup 1 --threads 1 \
  --set data.batch_size=4

out=$("$ft" bench step --config "$src/configs/vit-fashion-mnist.pbtxt" "${tiny[@]}" --set model.vit.patch_size=4 \
      --set distributed.precision=fp16 2>&1); code=$?
if [[ $code -ne 2 ]] || ! grep -q "distributed.precision" <<<"$out"; then echo "FAIL fp16-on-cpu: exit $code: $out"; fail=1
else echo "ok   fp16-on-cpu: $out"; fi
out=$("$ft" bench step --config "$src/configs/vit-fashion-mnist.pbtxt" --set data.store=/nonexistent.h5 2>&1); code=$?
if [[ $code -ne 2 ]] || ! grep -q -- "--image" <<<"$out"; then echo "FAIL no-shape: exit $code: $out"; fail=1
else echo "ok   no-shape: $out"; fi
exit $fail
