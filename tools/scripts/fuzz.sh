#!/usr/bin/env bash
# Fuzzes the readers of untrusted files (safetensors, the HDF5 store, checkpoints) with libFuzzer: builds the
# harnesses of tests/fuzz/ into build-fuzz/ (clang, -fsanitize=fuzzer,address,undefined; only those targets),
# makes seed corpora from real files (a synth store, an exported tiny ViT, the checkpoint of a 2-step run),
# runs the three harnesses side by side for SECONDS each and reports executions, exec/s, corpus size and
# crashes. Every crashing input is kept in build-fuzz/crashes/<reader>/ and makes the script fail; nothing is
# written into the source tree. To keep one as a regression (replayed by the ctest fuzz_regressions in the
# ordinary build), copy it to tests/fuzz/regressions/<reader>/ by hand once understood (tests/fuzz/README.md).
# Usage: bash tools/scripts/fuzz.sh [SECONDS]   (default 60; FACETRAIN_FUZZ_WORK=DIR keeps corpora there;
#        FACETRAIN_FUZZ_SEED=N fixes libFuzzer's seed, as the test suite's short run does; the seed files come from
#        the facetrain of FACETRAIN_BUILD_DIR, default build/; FACETRAIN_FUZZ_BUILD_DIR, default build-fuzz/)
# Exit: 0 no crash, 1 a crash (or a harness that did not run), 3 clang/libFuzzer not available.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
root=$(pwd)
ft=$(realpath -m "${FACETRAIN_BUILD_DIR:-build}")/bin/facetrain
fz=$(realpath -m "${FACETRAIN_FUZZ_BUILD_DIR:-build-fuzz}")

# libFuzzer comes with Debian's clang (libclang-rt-14-dev holds libclang_rt.fuzzer).
if ! command -v clang++ >/dev/null || ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
     clang++ -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz: clang with libFuzzer is not available (apt-get install clang libclang-rt-14-dev): not fuzzing"
  exit 3
fi
[[ -x "$ft" ]] || { echo "fuzz: $ft is missing (bash tools/scripts/build.sh facetrain makes the seeds' tool)"; exit 1; }

# 1. the harnesses (every library instrumented for coverage, ASan and UBSan; ccache shared with build/)
source tools/scripts/lib/ccache-env.sh
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer"
if [[ ! -f "$fz/build.ninja" ]]; then
  nice -n 19 cmake -S . -B "$fz" -G Ninja -DFACETRAIN_FUZZ=ON -DFACETRAIN_BUILD_TESTS=OFF \
    -DFACETRAIN_WITH_NCCL=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_C_FLAGS="$sanitize" \
    -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
fi
if ! nice -n 19 ninja -C "$fz" fuzz_safetensors fuzz_store fuzz_checkpoint > "$fz/fuzz-build.log" 2>&1; then
  grep -vE '^\[' "$fz/fuzz-build.log" | tail -40
  echo "fuzz: the harnesses did not build ($fz/fuzz-build.log)"
  exit 1
fi

# 2. seeds: real files, small (a 16 px store of 20 images, a tiny ViT's export, a 2-step run's checkpoint)
work=${FACETRAIN_FUZZ_WORK:-$(mktemp -d)}
[[ -n "${FACETRAIN_FUZZ_WORK:-}" ]] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{seeds,corpus,crashes}/{safetensors,store,checkpoint} "$work/run"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [[ ! -f "$work/run/store.h5" ]]; then
  nice -n 19 "$ft" synth --output "$work/run/store.h5" --count 20 --size 16 --seed 1 --quiet
  nice -n 19 "$ft" synth --output "$work/run/glasses.h5" --count 40 --size 16 --seed 2 --task glasses --quiet
  # the model must be tests/fuzz/readers.h's kTinyVitModel (fuzzed checkpoints load into it)
  model=$(sed -n 's/.*kTinyVitModel = "\(.*\)";/\1/p' tests/fuzz/readers.h)
  cat > "$work/run/run.pbtxt" <<CFG
model { $model }
data { store: "$work/run/glasses.h5" batch_size: 8 val_split: "val" }
optimizer { kind: "adamw" lr: 0.003 }
schedule { max_steps: 2 warmup_steps: 1 }
logging { run_dir: "$work/run/train" every_steps: 1 }
CFG
  nice -n 19 "$ft" train --config "$work/run/run.pbtxt" --threads 1 --quiet > "$work/run/train.log" 2>&1 ||
    { cat "$work/run/train.log"; echo "fuzz: the seed run failed"; exit 1; }
  nice -n 19 "$ft" export --checkpoint "$work/run/train" --output "$work/run/vit.safetensors" > /dev/null
fi
# synth's store holds one 768 KiB chunk of /images; h5repack makes small stores of each layout the reader takes,
# in the file format StoreWriter writes (-L: v2 object headers, with checksums)
for layout in "CONTI" "CHUNK=4x16x16x3" "CHUNK=4x16x16x3 -f images:GZIP=1"; do
  name=$(echo "$layout" | tr -cd 'A-Za-z0-9')
  # shellcheck disable=SC2086
  h5repack -L -l images:$layout "$work/run/store.h5" "$work/seeds/store/$name.h5"
done
cp "$work/run/vit.safetensors" "$work/seeds/safetensors/"
ckpt=$(ls "$work"/run/train/checkpoints/*.ckpt | tail -1)
# checkpoint harness inputs: a mode byte (readers.h: 0 verbatim, 1 header CRC recomputed, 2 drawn payload), then
# bytes; all-ones draws every entry of a payload, present and well formed
{ printf '\x00'; cat "$ckpt"; } > "$work/seeds/checkpoint/file"
{ printf '\x01'; cat "$ckpt"; } > "$work/seeds/checkpoint/file-header-crc"
{ printf '\x02'; head -c 64 /dev/zero | tr '\0' '\377'; } > "$work/seeds/checkpoint/payload-all"
{ printf '\x02'; head -c 256 "$ckpt"; } > "$work/seeds/checkpoint/payload-drawn"

# 3. the runs, side by side (each at nice 19; on 2 cores they share the CPUs)
for r in safetensors store checkpoint; do
  max_len=$(( $(du -b "$work"/seeds/$r/* | sort -n | tail -1 | cut -f1) + 1024 ))
  # bash's `time` gives the harness's CPU seconds (side by side on few cores, wall time overstates them).
  # -timeout is wall-clock: 60 s, because a nice-19 harness starved by other work on 2 cores once passed
  # 10 s on an input that replays in 95 ms. A real hang (the store's heap loop of tests/fuzz/README.md)
  # never ends, so it is still caught.
  ( cd "$work/crashes/$r" && export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=0 &&
      TIMEFORMAT='%U %S' && { time nice -n 19 "$fz/bin/fuzz_$r" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=60 -max_len="$max_len" -print_final_stats=1 -close_fd_mask=1 \
      ${FACETRAIN_FUZZ_SEED:+-seed=$FACETRAIN_FUZZ_SEED} "$work/corpus/$r" "$work/seeds/$r" \
      > "$work/$r.log" 2>&1 ; } 2> "$work/$r.cpu" ) &
done
wait || true

# A harness that crashed leaves its scratch directory (readers.h: make_scratch_dir) behind.
for d in /dev/shm/facetrain-fuzz-* "${TMPDIR:-/tmp}"/facetrain-fuzz-*; do
  [[ -d "$d" ]] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
done

# 4. the report; crashes are kept in $fz/crashes/ (a regression input only once a person copies it)
status=0
for r in safetensors store checkpoint; do
  log=$work/$r.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(ls "$work/corpus/$r" | wc -l)
  crashes=$(ls "$work/crashes/$r" | grep -cE '^(crash|leak|timeout|oom|slow-unit)-' || true)
  cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$work/$r.cpu" 2>/dev/null || true)
  printf 'fuzz: %-11s %10s executions %7s exec/s  %6s CPU-s  corpus %5s  crashes %s\n' "$r" "${execs:-?}" \
    "${rate:-?}" "${cpu:-?}" "$corpus" "$crashes"
  if [[ -z "$execs" ]]; then
    echo "fuzz: $r did not finish its run: $log"; tail -20 "$log"; status=1
  fi
  for f in "$work/crashes/$r"/*; do
    [[ -f "$f" ]] || continue
    case $(basename "$f") in slow-unit-*) continue ;; esac
    mkdir -p "$fz/crashes/$r"
    cp "$f" "$fz/crashes/$r/"
    echo "fuzz: $r: $fz/crashes/$r/$(basename "$f") ($(grep -a -m1 -E '==ERROR|libFuzzer: (timeout|out-of-memory|deadly)|not a UserError|runtime error' "$log" || echo 'see log'))"
    echo "fuzz:   to keep it as a regression: cp $fz/crashes/$r/$(basename "$f") tests/fuzz/regressions/$r/"
    status=1
  done
done
[[ -n "${FACETRAIN_FUZZ_WORK:-}" ]] && echo "fuzz: corpora and logs in $work"
exit $status
