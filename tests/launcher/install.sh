#!/usr/bin/env bash
# `cmake --install` gives a folder a cluster user copies to shared storage: installed into one prefix and then
# moved elsewhere, its bin/facetrain still finds every library (ldd), runs (`--version`, `synth`, a 2-rank
# training run from an installed config), and `submit` renders the installed Slurm script naming that binary.
# Usage: install.sh BUILD_DIR
set -uo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$work/first" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "cmake --install"; }
mv "$work/first" "$work/moved"
ft=$work/moved/bin/facetrain share=$work/moved/share/facetrain
[[ -x $ft && -f $share/slurm/train.sbatch && -f $share/configs/vit-fashion-mnist.pbtxt && -f $share/docs/gpu.md ]] ||
  { find "$work/moved" -maxdepth 3; fail "the installed folder lacks the binary, the Slurm script, configs or docs"; }
missing=$(ldd "$ft" | grep "not found")
[[ -z "$missing" ]] || fail "after a move, bin/facetrain misses libraries: $missing"
"$ft" --version > "$work/version.log" 2>&1 || { cat "$work/version.log"; fail "--version"; }
"$ft" synth --output "$work/s.h5" --count 200 --size 16 --seed 3 --quiet || fail "synth"
source "$(dirname "$0")/../lib/run_config.sh"
vit_config "$work/run.pbtxt" vit16 "$work/s.h5" 8 "" \
  'schedule { max_steps: 3 }' "logging { run_dir: \"$work/run\" }"
mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 "$ft" train --config "$work/run.pbtxt" --threads 1 \
  --quiet > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "training with the installed binary"; }
"$ft" submit --config "$work/run.pbtxt" --nodes 2 --gpus-per-node 4 --output-script "$work/job.sbatch" \
  > "$work/submit.log" 2>&1 || { cat "$work/submit.log"; fail "submit --output-script"; }
grep -qF "$ft" "$work/job.sbatch" || { grep -n FACETRAIN "$work/job.sbatch" | head -3; fail "the rendered script does not run $ft"; }
echo "ok   installed and moved: $(cat "$work/version.log"); ldd finds every library; trains on 2 ranks; submit renders a script running it"
