#!/usr/bin/env bash
# The test command.
#   bash tools/scripts/test.sh          the quick run, after tools/scripts/main-job.sh: installs what the tests
#                                       need, builds every target against Debian's LibTorch 1.13 and runs the whole
#                                       suite two tests at a time (ctest -j 2; tests that cannot share the machine
#                                       say so in their properties, tests/CMakeLists.txt). No second LibTorch, no
#                                       fuzzing; models_reference only once test.sh --full has made its environment.
#   bash tools/scripts/test.sh --full   what CI runs (.ci/run): the quick run with models_reference, the 30 s fuzz
#                                       of the untrusted-file readers (tools/scripts/fuzz.sh), and the tests that
#                                       depend on the LibTorch version built and run against the torch wheel's
#                                       CUDA LibTorch 2.x on CPU (build-torch2/, only the targets they need).
# Further arguments go to every ctest call (e.g. -R comm_). Each phase prints its wall time, the end a total.
# Environment: FACETRAIN_BUILD_DIR (build), FACETRAIN_TORCH2_BUILD_DIR (build-torch2), FACETRAIN_TEST_JOBS (2),
#   FACETRAIN_FUZZ_SECONDS (30), FACETRAIN_FUZZ_SEED (1), FACETRAIN_FAULT_SEED (the fault tests' draws, 1).
# Skips: ctest reports a shell test's exit 77 and a passed gtest with a GTEST_SKIP case as skipped. Under CI=true
# a skip of what CI provides (Slurm through slurm-local, network namespaces, the PyPI cross-checks, Chromium,
# Debian's Fashion-MNIST) is a failure (tests/lib/skip.sh); a GPU test's skip is not.
set -euo pipefail
cd "$(dirname "$0")/../.."
full=0
if [[ "${1:-}" == --full ]]; then full=1; shift; fi
build_dir="${FACETRAIN_BUILD_DIR:-build}"
torch2_dir="${FACETRAIN_TORCH2_BUILD_DIR:-build-torch2}"
jobs="${FACETRAIN_TEST_JOBS:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The fault tests draw their moments from a fixed seed (printed by each); set it to explore others.
export FACETRAIN_FAULT_SEED="${FACETRAIN_FAULT_SEED:-1}"

# The 2.x pass: what depends on the LibTorch version (collectives and gradient sync, the NCCL backend compiled and
# linked for real, the models, the model table and their weights I/O, the checkpoint store and in-place loads of
# training state (optimizer state is keyed differently in 1.x and 2.x), mixed precision, the communicator
# routing, BatchNorm across ranks, one end-to-end stop-and-resume of the binary, the profiler's traces (its event
# API differs between the versions), and checkpoints read across the two LibTorch versions:
# trained by one build, evaluated, exported and resumed by the other; the installed folder, whose RPATH must name
# the wheel's LibTorch). Targets built in build-torch2/, then these.
# A gtest target's ctest names are the target's, with _npN per rank count (tests/CMakeLists.txt).
torch2_gtests=(comm_communicator comm_gradient_sync comm_nccl_communicator comm_backend comm_node_placement
               models_architectures models_weights models_checkpoint_store models_reference
               models_model_spec trainer_precision trainer_routing trainer_training_state trainer_device_math
               trainer_sync_batchnorm models_flop_count trainer_multi_tensor trainer_step_agreement)
torch2_targets=("${torch2_gtests[@]}" facetrain)
torch2_tests="^(($(IFS='|'; echo "${torch2_gtests[*]}"))(_np[0-9]+)?|trainer_resume_after_signal_np2|trainer_checkpoint_across_versions_np2|trainer_profile_np2|trainer_host_reads_np2|trainer_memory_format_np2|launcher_install)\$"

phases=() total_start=$SECONDS failed=() counts=(0 0 0)
phase_start() { phase_name=$1 phase_t0=$SECONDS; echo "=== test: $phase_name"; }
phase_end() {
  local dt=$((SECONDS - phase_t0))
  phases+=("$(printf '%-44s %4d:%02d' "$phase_name" $((dt / 60)) $((dt % 60)))")
  echo "=== test: $phase_name: $((dt / 60)) min $((dt % 60)) s${1:+ ($1)}"
}
# run_ctest NAME DIR ARGS...: ctest two at a time; adds its passed/failed/skipped counts to the total.
run_ctest() {
  local name=$1 dir=$2 log rc=0; shift 2
  log="$dir/ctest-$name.log"
  ctest --test-dir "$dir" --output-on-failure --timeout 900 -j "$jobs" "$@" 2>&1 | tee "$log" || rc=$?
  local total bad skipped
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests\? failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
  bad=$(sed -n 's/.*tests passed, \([0-9]*\) tests\? failed out of.*/\1/p' "$log" | tail -1)
  skipped=$(grep -c '^[[:space:]]*[0-9]* - .* (Skipped)$' "$log" || true)
  counts=($((counts[0] + ${total:-0} - ${bad:-0} - skipped)) $((counts[1] + ${bad:-0})) $((counts[2] + skipped)))
  if ((rc != 0)) || [[ -z "$total" ]]; then failed+=("ctest $name"); fi
}

# 1. Debian packages and the test-only .venv-test (TensorBoard's reader).
phase_start "dependencies (Debian packages, .venv-test)"
FACETRAIN_TEST_DEPS=1 bash tools/scripts/install-deps.sh
phase_end

# 2. (--full) The torch wheel with timm and torchvision beside it (.venv-torch): downloaded while 1.13 builds.
if ((full)); then
  mkdir -p "$torch2_dir"
  venv_log="$torch2_dir/venv.log"
  echo "test: the torch wheel, timm and torchvision into .venv-torch in the background (log: $venv_log)"
  ( bash tools/scripts/build-libtorch2.sh --prepare &&
    if ! .venv-torch/bin/python -c "import timm, torchvision" 2>/dev/null; then
      torch_version=$(.venv-torch/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))')
      .venv-torch/bin/pip install -q --disable-pip-version-check timm torchvision "torch==$torch_version"
    fi ) > "$venv_log" 2>&1 &
  venv_pid=$!
fi

# 3. The LibTorch 1.13 build (every target) and the whole suite.
phase_start "build, LibTorch 1.13 ($build_dir/)"
FACETRAIN_BUILD_DIR="$build_dir" bash tools/scripts/build.sh
phase_end
reference=()
if ((full)); then
  phase_start "waiting for .venv-torch"
  venv_rc=0
  wait "$venv_pid" || venv_rc=$?
  if ((venv_rc != 0)); then
    tail -20 "$venv_log"
    echo "test: .venv-torch could not be made (log above, $venv_log): the 2.x pass and models_reference cannot run"
    failed+=(".venv-torch")
  fi
  phase_end
elif ! .venv-torch/bin/python -c "import timm, torchvision" 2>/dev/null; then
  # Its environment (~4 GB torch wheel) is made by --full only; without it the test would only skip.
  reference=(-LE '^reference$')
  echo "test: models_reference is left out (it needs .venv-torch with timm and torchvision: test.sh --full)"
fi
phase_start "tests, LibTorch 1.13 (ctest -j $jobs)"
run_ctest torch1 "$build_dir" "${reference[@]}" "$@"
phase_end

if ((full)); then
  # 4. The readers of untrusted files under libFuzzer, 30 s per harness side by side, a fixed seed. A crash
  # fails the run; its input stays in build-fuzz/crashes/ (tests/fuzz/README.md: keeping it as a regression).
  phase_start "fuzz, ${FACETRAIN_FUZZ_SECONDS:-30} s per reader (build-fuzz/)"
  fuzz_rc=0
  FACETRAIN_BUILD_DIR="$build_dir" FACETRAIN_FUZZ_SEED="${FACETRAIN_FUZZ_SEED:-1}" \
    bash tools/scripts/fuzz.sh "${FACETRAIN_FUZZ_SECONDS:-30}" || fuzz_rc=$?
  if ((fuzz_rc == 3)); then
    echo "test: clang/libFuzzer is not available: not fuzzed"
    [[ "${CI:-}" == true ]] && failed+=("fuzz (clang/libFuzzer missing; CI installs it)")
  elif ((fuzz_rc != 0)); then
    failed+=("fuzz")
  fi
  phase_end

  # 5. The version-sensitive tests against LibTorch 2.x (CUDA build, run on CPU; GPU cases skip).
  if [[ -x .venv-torch/bin/python ]] || [[ -n "${FACETRAIN_LIBTORCH:-}" ]]; then
    phase_start "build, LibTorch 2.x ($torch2_dir/: ${#torch2_targets[@]} targets)"
    torch2_rc=0
    FACETRAIN_TORCH2_BUILD_DIR="$torch2_dir" bash tools/scripts/build-libtorch2.sh "${torch2_targets[@]}" ||
      torch2_rc=$?
    phase_end
    if ((torch2_rc == 0)); then
      phase_start "tests, LibTorch 2.x (ctest -j $jobs -R ...)"
      run_ctest torch2 "$torch2_dir" -R "$torch2_tests" "$@"
      phase_end
    else
      failed+=("build-libtorch2")
    fi
  fi
fi

echo "=== test: wall time per phase"
printf '  %s\n' "${phases[@]}"
dt=$((SECONDS - total_start))
printf '  %-44s %4d:%02d\n' "total" $((dt / 60)) $((dt % 60))
if ((${#failed[@]})); then
  echo "test: FAILED: ${failed[*]}"
fi
echo "test: ${counts[0]} passed, ${counts[1]} failed, ${counts[2]} skipped"
((${#failed[@]} == 0))
