#!/usr/bin/env bash
# The prepared GPU check: runs on a lent GPU machine (one H100, no network, python3 = PyTorch 2.11.0+cu130),
# from the repository root, with .gpu-check/ carried beside the working tree (make it here first:
# bash tools/scripts/make-gpu-bundle.sh). Ends with ONE table on stdout, one row per check; everything else
# goes to stderr and to the logs (copied to $OUT/gpu-check-logs.tar.gz when $OUT is set, as on the device).
#
#   1. tests/comm gtest binaries on 1 rank (no mpirun: a singleton MPI world), NCCL ones included
#   2. facetrain bench step, ViT-B/16 at 224 px (bf16 autocast) and DCGAN paper64, beside the same model, batch
#      and step in plain PyTorch (tools/scripts/gpu_reference.py) on the same GPU: images/s and TFLOP/s
#   3. a 200-step training run on a `facetrain synth` store; the same run stopped by SIGUSR1 (exit 75 after a
#      checkpoint) and resumed with --resume auto; its per-step losses must equal the uninterrupted run's
#   and, for every facetrain process, that each library it loaded came from the bundle, the torch it was
#   built for, the nvidia-* wheels, or the C/C++ runtime (LD_DEBUG audit): nothing else of the machine's.
#
# Usage: bash tools/scripts/gpu-check.sh [--dry-run] [--keep] [--help]
#   --dry-run   the CPU parts here, at tiny sizes: torch from .gpu-check-build/site (the unpacked wheel the
#               bundle was built against), CUDA libraries from /usr/local/cuda/lib64, Python reference with
#               /usr/bin/python3 (Debian's python3-torch) on the CPU
#   --keep      keep the work folder (default: removed unless a check failed)
# Env: FACETRAIN_GPU_PYTHON (python3 holding torch; default python3, /usr/bin/python3 with --dry-run),
#      FACETRAIN_GPU_CHECK_BUDGET (seconds for all checks, default 450: the table must come within 8 min).
# Exit: 0 every check passed, 1 some failed, 2 cannot start (no bundle, torch version differs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dry=0 keep=0
for a in "$@"; do
  case $a in
    --dry-run) dry=1 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument $a (see --help)" >&2; exit 2 ;;
  esac
done
start=$SECONDS
budget=${FACETRAIN_GPU_CHECK_BUDGET:-450}
bundle=$root/.gpu-check
ft=$bundle/bin/facetrain
note() { echo "gpu-check: $*" >&2; }

[[ -f $bundle/MANIFEST && -x $ft ]] ||
  { echo "gpu-check: no .gpu-check/ bundle: make it with bash tools/scripts/make-gpu-bundle.sh and carry .gpu-check"; exit 2; }
want=$(sed -n 's/^torch_version=//p' "$bundle/MANIFEST")

# --- the torch (and its CUDA/NCCL) that the binaries load ------------------------------------------------
if [[ $dry -eq 1 ]]; then
  py=${FACETRAIN_GPU_PYTHON:-/usr/bin/python3}
  # FACETRAIN_GPU_TORCH_DIR: another torch/ folder (its nvidia/ beside it) for a bundle made elsewhere.
  torch_dir=${FACETRAIN_GPU_TORCH_DIR:-$root/.gpu-check-build/site/torch}
  # The wheel holds no CUDA libraries but NCCL: the CUDA 13.0 toolkit's stand in for the nvidia-* wheels.
  nvidia_dirs=("$(dirname "$torch_dir")"/nvidia/*/lib /usr/local/cuda/lib64)
  device=cpu
else
  py=${FACETRAIN_GPU_PYTHON:-python3}
  # find_spec: the folder without importing torch (an import takes seconds).
  torch_dir=$("$py" -c 'import importlib.util, os; s = importlib.util.find_spec("torch"); print(os.path.dirname(s.origin) if s else "")' 2>/dev/null || true)
  [[ -n "$torch_dir" ]] || { echo "gpu-check: $py has no torch (set FACETRAIN_GPU_PYTHON to the python3 that does)"; exit 2; }
  # The torch wheel's CUDA, cuDNN and NCCL libraries are nvidia-* wheels beside torch/ in site-packages.
  shopt -s nullglob
  nvidia_dirs=("$(dirname "$torch_dir")"/nvidia/*/lib)
  shopt -u nullglob
  device=cuda
fi
have=$(sed -nE "s/^__version__ = '(.*)'/\1/p" "$torch_dir/version.py" 2>/dev/null || true)
if [[ "$have" != "$want" ]]; then
  echo "gpu-check: this machine's torch is '${have:-none}' ($torch_dir), the bundle was built for $want: re-make it with FACETRAIN_GPU_TORCH_VERSION=${have%%+*} bash tools/scripts/make-gpu-bundle.sh"
  exit 2
fi

work=${FACETRAIN_GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
mkdir -p "$work/logs" "$work/ld" "$work/no-hwloc-plugins"
note "work folder $work; torch $have from $torch_dir; device $device"
# The machine's own LD_LIBRARY_PATH stays last: it may be how its torch finds the driver's libcuda.so.1.
ld_path=$bundle/lib:$torch_dir/lib$(printf ':%s' "${nvidia_dirs[@]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The bundle's Open MPI is relocated (OPAL_PREFIX: help texts; the component path: its singleton plugins);
# ess_singleton_isolated: a process without mpirun is a world of one and starts no orted (none is carried).
# HWLOC_PLUGINS_PATH: an empty folder, so hwloc loads no plugin of the machine's own.
ft_env=(env LD_LIBRARY_PATH="$ld_path" OPAL_PREFIX="$bundle/openmpi"
        OMPI_MCA_mca_base_component_path="$bundle/openmpi/lib/openmpi3" OMPI_MCA_ess_singleton_isolated=1
        OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HWLOC_PLUGINS_PATH="$work/no-hwloc-plugins"
        FACETRAIN_SOURCE_DIR="$root")

names=() results=() verdicts=()
row() { names+=("$1"); results+=("$2"); verdicts+=("$3"); note "$1: $2 [$3]"; }
left() { echo $((budget - (SECONDS - start))); }
# limit N: N seconds, or what is left of the budget if less.
limit() { local l; l=$(left); echo $(( $1 < l ? $1 : l )); }
# ftrun NAME SECONDS CMD...: a facetrain/test process with the bundle's environment and the loader's record
# of every file it opened (LD_DEBUG=libs,files; audited at the end). Output in logs/NAME.log.
ftrun() {
  local name=$1 secs; secs=$(limit "$2"); shift 2
  if (( secs < 5 )); then echo "not run: out of time" > "$work/logs/$name.log"; return 124; fi
  timeout -k 5 "$secs" "${ft_env[@]}" LD_DEBUG=libs,files LD_DEBUG_OUTPUT="$work/ld/$name" "$@" \
    > "$work/logs/$name.log" 2>&1
}
kv() { sed -nE "s/(^|.* )$1=([^ ]+).*/\2/p" <<<"$2" | tail -1; }   # kv KEY LINE

# --- 0. the bundle loads ----------------------------------------------------------------------------------
if ! ftrun load 30 "$ft" --help; then
  row "bundle loads (facetrain --help)" "$(grep -v '^ *$' "$work/logs/load.log" | head -2 | tr '\n' ' ' | cut -c1-150)" fail
  loaded=0
else
  row "bundle loads (facetrain --help)" "torch $have, $(basename "$torch_dir")/lib + ${#nvidia_dirs[@]} nvidia lib folders" pass
  loaded=1
fi

if [[ $loaded -eq 1 ]]; then
# --- 1. comm tests on one rank (singleton MPI) ---------------------------------------------------------
for t in "$bundle"/bin/comm_*; do
  name=$(basename "$t")
  set +e; ftrun "$name" 120 "$t" --gtest_brief=1; code=$?; set -e
  log=$work/logs/$name.log
  passed=$(sed -nE 's/^\[  PASSED  \] ([0-9]+) test.*/\1/p' "$log" | tail -1)
  skipped=$(sed -nE 's/^\[  SKIPPED \] ([0-9]+) test.*/\1/p' "$log" | tail -1)
  failed=$(sed -nE 's/^\[  FAILED  \] ([0-9]+) test.*/\1/p' "$log" | tail -1)
  verdict=pass
  [[ $code -eq 0 ]] || verdict=fail
  # On the GPU the NCCL tests must really run: all of them skipped means no CUDA device was found.
  if [[ $dry -eq 0 && $name == *nccl* && ${passed:-0} -eq 0 ]]; then verdict=fail; fi
  row "$name (1 rank)" "exit $code: ${passed:-0} passed, ${skipped:-0} skipped, ${failed:-0} failed" "$verdict"
done

# --- 2. bench step beside plain PyTorch ------------------------------------------------------------------
if [[ $dry -eq 1 ]]; then  # tiny sizes: this checks that each command runs and its line parses
  vit_model='patch_size: 8 width: 64 depth: 2 heads: 2 mlp_ratio: 2'; vit_image=32; vit_batch=8
  vit_py=(--image 32 --patch 8 --width 64 --depth 2 --heads 2 --mlp-ratio 2)
  dc_width=8; dc_batch=4; steps=3; warmup=1; threads=(--threads 2); py_threads=(--threads 2)
  vit_label="vit tiny (dry run) bf16 b$vit_batch" dc_label="dcgan paper64 width 8 (dry run) fp32 b$dc_batch"
else
  vit_model='patch_size: 16 width: 768 depth: 12 heads: 12 mlp_ratio: 4'; vit_image=224; vit_batch=128
  vit_py=(--image 224 --patch 16 --width 768 --depth 12 --heads 12 --mlp-ratio 4)
  dc_width=64; dc_batch=128; steps=20; warmup=3; threads=(); py_threads=()
  vit_label="vit-b16 224px bf16 b$vit_batch" dc_label="dcgan paper64 fp32 b$dc_batch"
fi
cat > "$work/vit.pbtxt" <<CFG
model { vit { $vit_model } }
data { store: "/nonexistent.h5" batch_size: $vit_batch }
optimizer { kind: "adamw" lr: 0.001 weight_decay: 0.05 }
logging { run_dir: "$work/unused" }
CFG
cat > "$work/dcgan.pbtxt" <<CFG
model { dcgan { architecture: "paper64" z_size: 100 g_width: $dc_width d_width: $dc_width sample_count: 16 } }
data { store: "/nonexistent.h5" batch_size: $dc_batch val_split: "" }
optimizer { kind: "adam" lr: 0.0002 beta1: 0.5 beta2: 0.999 weight_decay: 0 }
logging { run_dir: "$work/unused" }
CFG
py_ok=1
"$py" -c 'import torch' 2>/dev/null || py_ok=0
# pyref NAME ARGS...: the reference line, or empty
pyref() {
  local name=$1 secs; shift; secs=$(limit 150)
  [[ $py_ok -eq 1 && $secs -ge 5 ]] || return 0
  timeout -k 5 "$secs" "$py" tools/scripts/gpu_reference.py "$@" --device "$device" --steps "$steps" \
    --warmup "$warmup" "${py_threads[@]}" > "$work/logs/$name.log" 2>&1 || true
  grep '^reference ' "$work/logs/$name.log" | tail -1
}
figure() {  # figure STEP_S IMAGES_PER_S TFLOPS
  printf 'step %s s, %s img/s, %s TFLOP/s' "$1" "$2" "$3"
}
tf() { awk -v a="$1" -v b="${2:-}" 'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%.3g", a * b / 1e12 }'; }

# ViT-B/16 (facetrain prints GFLOP/s = 3 x vit_flops_per_image x images/s; the reference uses that formula)
vit_ft_ips="" vit_py_ips=""
# The first (warm-up) step also runs under LibTorch's profiler (--profile 1): its trace must hold CUDA kernels.
set +e; ftrun bench_vit 240 "$ft" bench step --config "$work/vit.pbtxt" --set distributed.precision=bf16 \
  --image "$vit_image" --channels 3 --classes 10 --steps "$steps" --warmup "$warmup" "${threads[@]}" \
  --profile 1 --profile-dir "$work/profile"; code=$?; set -e
kernels=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print(sum(1 for e in t["traceEvents"] if e.get("cat") == "kernel"))' \
  "$work/profile/rank-0.trace.json" 2>/dev/null || echo 0)
[[ ${kernels:-0} -gt 0 ]] && row "profiler trace of a GPU step (--profile)" "$kernels CUDA kernel events in rank-0.trace.json" pass ||
  row "profiler trace of a GPU step (--profile)" "no CUDA kernel events in $work/profile/rank-0.trace.json" fail
line=$(grep '^bench_step ' "$work/logs/bench_vit.log" | tail -1 || true)
if [[ $code -eq 0 && -n "$line" ]]; then
  vit_ft_ips=$(kv images_per_s "$line")
  row "bench $vit_label: facetrain" "$(figure "$(kv step_s "$line")" "$vit_ft_ips" \
      "$(awk -v g="$(kv gflops "$line")" 'BEGIN { printf "%.3g", g / 1000 }')") (matmul 1024^3: $(awk -v g="$(kv matmul_gflops "$line")" 'BEGIN { printf "%.3g", g / 1000 }') TFLOP/s)" pass
else
  row "bench $vit_label: facetrain" "exit $code: $(tail -1 "$work/logs/bench_vit.log" | cut -c1-120)" fail
fi
for attention in sdpa bmm; do
  ref=$(pyref "ref_vit_$attention" vit --precision bf16 --batch "$vit_batch" --attention "$attention" "${vit_py[@]}")
  if [[ -n "$ref" ]]; then
    ips=$(kv images_per_s "$ref"); [[ $attention == sdpa ]] && vit_py_ips=$ips
    row "bench $vit_label: PyTorch $(kv torch "$ref"), attention $(kv attention "$ref")" \
        "$(figure "$(kv step_s "$ref")" "$ips" "$(kv tflops "$ref")")" pass
  else
    row "bench $vit_label: PyTorch, attention $attention" \
        "$([[ $py_ok -eq 1 ]] && tail -1 "$work/logs/ref_vit_$attention.log" | cut -c1-120 || echo "no torch in $py")" fail
  fi
done

# DCGAN paper64 (facetrain prints no FLOP count: the reference's 3 G + 8 D forward FLOPs per image is applied)
ref=$(pyref ref_dcgan dcgan --batch "$dc_batch" --g-width "$dc_width" --d-width "$dc_width")
dc_flops=$(kv flops_per_image "$ref")
set +e; ftrun bench_dcgan 240 "$ft" bench step --config "$work/dcgan.pbtxt" --image 64 --channels 3 --classes 2 \
  --steps "$steps" --warmup "$warmup" "${threads[@]}"; code=$?; set -e
line=$(grep '^bench_step ' "$work/logs/bench_dcgan.log" | tail -1 || true)
if [[ $code -eq 0 && -n "$line" ]]; then
  dc_ft_ips=$(kv images_per_s "$line")
  row "bench $dc_label: facetrain" "$(figure "$(kv step_s "$line")" "$dc_ft_ips" "$(tf "$dc_flops" "$dc_ft_ips")")" pass
else
  row "bench $dc_label: facetrain" "exit $code: $(tail -1 "$work/logs/bench_dcgan.log" | cut -c1-120)" fail
fi
if [[ -n "$ref" ]]; then
  row "bench $dc_label: PyTorch $(kv torch "$ref")" \
      "$(figure "$(kv step_s "$ref")" "$(kv images_per_s "$ref")" "$(kv tflops "$ref")") ($(awk -v f="$dc_flops" 'BEGIN { printf "%.2f", f / 1e9 }') GFLOP/image)" pass
else
  row "bench $dc_label: PyTorch" "$([[ $py_ok -eq 1 ]] && tail -1 "$work/logs/ref_dcgan.log" | cut -c1-120 || echo "no torch in $py")" fail
fi

# --- 3. train, stop by SIGUSR1, resume: the losses of both runs are equal ---------------------------------
if [[ $dry -eq 1 ]]; then
  count=600 size=16 model='patch_size: 4 width: 32 depth: 2 heads: 2 mlp_ratio: 2' batch=16 max_steps=60 signal_at=8
  train_threads=(--threads 1)
else
  count=4096 size=64 model='patch_size: 8 width: 256 depth: 6 heads: 4 mlp_ratio: 4' batch=128 max_steps=200 signal_at=50
  train_threads=()
fi
set +e; ftrun synth 120 "$ft" synth --output "$work/store.h5" --count "$count" --size "$size" --seed 3 --quiet; code=$?; set -e
[[ $code -eq 0 ]] && row "synth store" "$count images of ${size}x$size" pass ||
  row "synth store" "exit $code: $(tail -1 "$work/logs/synth.log" | cut -c1-120)" fail
cat > "$work/run.pbtxt" <<CFG
model { vit { $model } }
data { store: "$work/store.h5" batch_size: $batch val_split: "val" }
optimizer { kind: "adamw" lr: 0.001 grad_clip_norm: 1.0 }
schedule { epochs: 1000 max_steps: $max_steps warmup_steps: 10 }
logging { run_dir: "$work/unused" every_steps: 1 }
CFG
losses() {  # "step loss" per line for the train/loss records of a metrics.jsonl (as train_resume.sh)
  grep '"train/loss"' "$1" 2>/dev/null | sed -E 's/.*"step": *([0-9]+).*"train\/loss": *([-0-9.eE+]+).*/\1 \2/'
}
train=("$ft" train --config "$work/run.pbtxt" --quiet "${train_threads[@]}")
set +e; ftrun train_a 180 "${train[@]}" --set logging.run_dir="$work/a"; code_a=$?; set -e
n_a=$(losses "$work/a/metrics.jsonl" | wc -l)
[[ $code_a -eq 0 && $n_a -eq $max_steps ]] &&
  row "train $max_steps steps, uninterrupted" "exit 0, $n_a losses, last $(losses "$work/a/metrics.jsonl" | tail -1 | cut -d' ' -f2), $(grep -o 'gradient sync over [a-z]*' "$work/logs/train_a.log" | head -1), input normalized $(grep -o 'applied on the [a-z]*' "$work/logs/train_a.log" | head -1 | sed 's/applied //')" pass ||
  row "train $max_steps steps, uninterrupted" "exit $code_a, $n_a losses: $(tail -1 "$work/logs/train_a.log" | cut -c1-100)" fail

# Run b in the background (no timeout wrapper: the signal must reach facetrain itself; env execs it).
stop_verdict=fail stop_result="not run: out of time" stopped_at=""
if (( $(left) > 30 )); then
  "${ft_env[@]}" LD_DEBUG=libs,files LD_DEBUG_OUTPUT="$work/ld/train_b1" "${train[@]}" \
    --set logging.run_dir="$work/b" > "$work/logs/train_b1.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + $(limit 180)))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do
    (( $(losses "$work/b/metrics.jsonl" | wc -l) >= signal_at )) && break
    sleep 0.05
  done
  kill -USR1 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid"; code_b=$?; set -e
  stopped_at=$(losses "$work/b/metrics.jsonl" | tail -1 | cut -d' ' -f1)
  ckpt=$(ls "$work/b/checkpoints/" 2>/dev/null | grep -c "checkpoint-0*${stopped_at:-x}.ckpt" || true)
  stop_result="exit $code_b at step ${stopped_at:-none} (signal after step $signal_at), checkpoint there: $([[ $ckpt -gt 0 ]] && echo yes || echo no)"
  if [[ $code_b -eq 75 && $ckpt -gt 0 && -n "$stopped_at" && $stopped_at -lt $max_steps ]] &&
     grep -q "stop requested" "$work/logs/train_b1.log"; then stop_verdict=pass; fi
fi
row "train stopped by SIGUSR1" "$stop_result" "$stop_verdict"
set +e; ftrun train_b2 180 "${train[@]}" --set logging.run_dir="$work/b" --resume auto; code=$?; set -e
resumed=$(grep -o "resumed from .*at step [0-9]*" "$work/logs/train_b2.log" | head -1 | sed -E 's/.*at step //')
[[ $code -eq 0 && -n "$resumed" && "$resumed" == "$stopped_at" ]] &&
  row "train --resume auto" "exit 0, resumed at step $resumed" pass ||
  row "train --resume auto" "exit $code, resumed at '${resumed:-none}': $(tail -1 "$work/logs/train_b2.log" | cut -c1-100)" fail
n_b=$(losses "$work/b/metrics.jsonl" | wc -l)
same=$(join <(losses "$work/a/metrics.jsonl") <(losses "$work/b/metrics.jsonl") | awk '$2 == $3' | wc -l)
maxdiff=$(join <(losses "$work/a/metrics.jsonl") <(losses "$work/b/metrics.jsonl") |
          awk '{ d = $2 - $3; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m + 0 }')
[[ $n_a -eq $max_steps && $n_b -eq $max_steps && $same -eq $max_steps ]] &&
  row "losses stopped+resumed == uninterrupted" "$same of $max_steps steps identical" pass ||
  row "losses stopped+resumed == uninterrupted" "$same of $max_steps identical (a: $n_a, b: $n_b records, max |diff| $maxdiff)" fail
fi  # loaded

# --- audit: which files did the loader map into the facetrain processes ---------------------------------
# Allowed: the bundle, the torch it was built for, the nvidia lib folders, and the C/C++ runtime and GPU
# driver libraries of the machine (by name). Anything else means the bundle is incomplete there.
allowed_dirs=("$bundle" "$torch_dir" "${nvidia_dirs[@]}")
foreign=$(cat "$work"/ld/* 2>/dev/null | awk '
  /trying file=/ { sub(/.*trying file=/, ""); last = $0; next }
  /generating link map/ { sub(/^[ \t0-9:]*file=/, ""); sub(/ \[[0-9]+\];.*/, ""); print ($0 ~ /^\// ? $0 : last) }' |
  sort -u | while read -r f; do
    ok=0
    for d in "${allowed_dirs[@]}"; do [[ $f == "$d"/* ]] && ok=1; done
    case $(basename "$f") in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libutil.so*|libresolv.so*|ld-linux-x86-64.so*|\
      libstdc++.so*|libgcc_s.so*|libcuda.so*|libnvidia-*|libnss_*) ok=1 ;;
    esac
    [[ $ok -eq 1 ]] || echo "$f"
  done)
n_ld=$(ls "$work/ld" 2>/dev/null | wc -l)
if [[ $n_ld -eq 0 ]]; then
  row "libraries loaded only from bundle/torch/nvidia" "no loader record" fail
elif [[ -z "$foreign" ]]; then
  row "libraries loaded only from bundle/torch/nvidia" "$n_ld processes audited, none from elsewhere" pass
else
  row "libraries loaded only from bundle/torch/nvidia" "$(wc -l <<<"$foreign") from elsewhere: $(head -3 <<<"$foreign" | tr '\n' ' ')" fail
fi
# A stub that was called aborted its process; name it (the row of that check failed already).
{ grep -h "gpu-check: called a stub" "$work"/logs/*.log 2>/dev/null || true; } | sort -u | head -3 >&2

# --- the table ---------------------------------------------------------------------------------------------
fails=0
for v in "${verdicts[@]}"; do [[ $v == pass ]] || fails=$((fails + 1)); done
{
  echo "gpu-check$([[ $dry -eq 1 ]] && echo " --dry-run (CPU, tiny sizes)") on $(uname -n), $( [[ $dry -eq 1 ]] && echo cpu || nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), torch $have, $((SECONDS - start)) s, $fails failed"
  echo
  echo "| check | result | pass/fail |"
  echo "| --- | --- | --- |"
  for i in "${!names[@]}"; do echo "| ${names[$i]} | ${results[$i]} | ${verdicts[$i]} |"; done
} > "$work/table.md"
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
  cp "$work/table.md" "$OUT/gpu-check-table.md"
  tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$work" logs ld 2>/dev/null || true
fi
cat "$work/table.md"
if [[ $keep -eq 1 || $fails -gt 0 ]]; then note "work folder kept: $work"; else rm -rf "$work"; fi
exit $(( fails > 0 ))
