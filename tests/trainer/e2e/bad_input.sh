#!/usr/bin/env bash
# Bad input to `facetrain train` gives one clear line naming the file/line/field or flag, exit code 2, and
# no run directory; with RANKS > 1 every case runs under mpirun (tests/lib/bad_input.sh).
# Usage: bad_input.sh FACETRAIN_BINARY [RANKS]
source "$(dirname "$0")/../../lib/bad_input.sh" "$@"
printf 'model { vit { width: 64 } }\ndata { stor: "x.h5" }\n' > "$work/unknown.pbtxt"
printf 'model { vit { width: "wide" } }\n' > "$work/value.pbtxt"
printf 'model { vit { width: 64 heads: 5 } }\ndata { store: "%s/none.h5" }\nlogging { run_dir: "%s/r" }\n' "$work" "$work" > "$work/heads.pbtxt"
printf 'model { vit { } }\ndata { store: "%s/none.h5" }\nlogging { run_dir: "%s/r" }\n' "$work" "$work" > "$work/nostore.pbtxt"
expect unknown-field "unknown.pbtxt:2:.*stor" -- "$ft" train --config "$work/unknown.pbtxt"
expect bad-value "value.pbtxt:1:.*width" -- "$ft" train --config "$work/value.pbtxt"
expect missing-file "nothere.pbtxt" -- "$ft" train --config "$work/nothere.pbtxt"
expect validation "model.vit.width.*model.vit.heads" -- "$ft" train --config "$work/heads.pbtxt"
expect bad-override "--set optimizer.lrr=1.*lrr" -- "$ft" train --config "$work/heads.pbtxt" --set optimizer.lrr=1
expect missing-store "none.h5" -- "$ft" train --config "$work/nostore.pbtxt"
# A --resume file that is missing or damaged: one line naming it, and no run directory left behind.
"$ft" synth --output "$work/s.h5" --count 64 --size 16 --quiet || { echo "FAIL: synth"; exit 1; }
printf 'model { vit { patch_size: 4 width: 16 depth: 1 heads: 2 } }\ndata { store: "%s/s.h5" batch_size: 8 }\nlogging { run_dir: "%s/r" }\n' "$work" "$work" > "$work/good.pbtxt"
printf 'not a checkpoint' > "$work/garbage.ckpt"
expect resume-missing "--resume: .*nothere.ckpt" -- "$ft" train --config "$work/good.pbtxt" --resume "$work/nothere.ckpt"
expect resume-damaged "--resume: .*garbage.ckpt" -- "$ft" train --config "$work/good.pbtxt" --resume "$work/garbage.ckpt"
# Failures on one rank only (with 2 and 3 ranks): a store missing on one node, a field only that rank was
# given. Its peers must not wait in a collective: the failing rank's line, exit 2 everywhere.
expect_last_rank one-rank-store "elsewhere.h5 does not exist" "--set data.store=$work/elsewhere.h5" -- \
  "$ft" train --config "$work/good.pbtxt"
expect_last_rank one-rank-field "model.vit.heads" "--set model.vit.heads=5" -- "$ft" train --config "$work/good.pbtxt"
# One rank sees a GPU and its peers none (FACETRAIN_TEST_GPU_IDS stands for the driver: launcher/gpu_info.h):
# placement names both ranks in one line, every rank exits 2, nobody waits for an NCCL id.
if [[ $ranks -gt 1 ]]; then
  run_ranks -np $((ranks - 1)) "$ft" train --config "$work/good.pbtxt" :     -np 1 env FACETRAIN_TEST_GPU_IDS=0000:1b:00.0 "$ft" train --config "$work/good.pbtxt"
  if [[ $code == aborted ]]; then echo "FAIL one-rank-gpu: the job was aborted: $out"; fail=1
  else judge one-rank-gpu "rank 0 on host .* sees no GPU while rank $((ranks - 1)) on host .* sees 1" "$out" "$code" "$lines"; fi
fi
# No GPU and no NCCL here: asking for nccl is one line before anything else is opened.
expect nccl-backend "distributed.backend: nccl" -- "$ft" train --config "$work/nostore.pbtxt" --set distributed.backend=nccl
expect unknown-flag "--bogus|bogus" -- "$ft" train --bogus
# Before MPI starts there is no rank to speak for the others: single process only.
[[ $ranks -eq 1 ]] && expect unknown-command "unknown command" -- "$ft" trian
exit $fail
