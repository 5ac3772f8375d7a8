#!/usr/bin/env bash
# `ingest --face-crop` at CelebA's image size: how fast, how many faces it finds, how many it invents.
# Makes two folders of 178x218 JPEGs (CelebA's size): N faces drawn by `facetrain synth` (128 px, pasted at a
# random place on a plain noisy background) and 3N face-free images (smooth colour fields with noise), then
# ingests each to a 64x64 store with and without --face-crop and prints images/s (wall, all cores), CPU ms
# per image, and the faces found ("hits" on the drawn faces, false positives on the face-free ones).
# Usage: bash tools/bench/ingest_faces.sh [N] [WORKDIR]     (defaults: 1000, a temporary folder)
# Needs Debian's python3-pil, python3-h5py, bc and time (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
work=${2:-$(mktemp -d)}
[[ -n "${2:-}" ]] || trap 'rm -rf "$work"' EXIT
ft=$PWD/build/bin/facetrain
[[ -x $ft ]] || { echo "ingest_faces: $ft is missing (bash tools/scripts/build.sh)" >&2; exit 2; }
if ! /usr/bin/python3 -c "import PIL, h5py" 2>/dev/null || ! command -v bc >/dev/null || [[ ! -x /usr/bin/time ]]; then
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pil python3-h5py bc time >/dev/null
fi

mkdir -p "$work"
if [[ ! -d $work/faces/face ]]; then
  "$ft" synth --output "$work/synth.h5" --count "$n" --size 128 --seed 5 --quiet --overwrite
  /usr/bin/python3 - "$work" "$n" <<'EOF'
import os, sys
import h5py, numpy as np
from PIL import Image
work, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
os.makedirs(f"{work}/faces/face"); os.makedirs(f"{work}/no-faces/none")
with h5py.File(f"{work}/synth.h5") as f:
    for i, face in enumerate(f["images"][:]):
        canvas = rng.integers(60, 200, size=3)[None, None, :] + rng.normal(0, 12, (218, 178, 3))
        canvas = canvas.clip(0, 255).astype(np.uint8)
        y, x = rng.integers(0, 218 - 128), rng.integers(0, 178 - 128)
        canvas[y:y + 128, x:x + 128] = face
        Image.fromarray(canvas).save(f"{work}/faces/face/{i:06d}.jpg", quality=90)
for i in range(3 * n):
    field = Image.fromarray(rng.uniform(0, 255, (7, 6, 3)).astype(np.uint8)).resize((178, 218), Image.BICUBIC)
    img = np.asarray(field, dtype=np.float32) + rng.normal(0, 20, (218, 178, 3))
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(f"{work}/no-faces/none/{i:06d}.jpg", quality=90)
EOF
fi

printf '%-9s %-12s %7s %10s %12s %s\n' set mode images images/s "CPU ms/img" "faces found"
for set in faces no-faces; do
  count=$(ls "$work/$set"/*/ | wc -l)
  for mode in plain face-crop; do
    flags=(); [[ $mode == face-crop ]] && flags=(--face-crop)
    start=$(date +%s.%N)
    out=$( { /usr/bin/time -f 'cpu %U %S' "$ft" ingest --source folders --input "$work/$set" --output "$work/out.h5" \
             --size 64 --overwrite "${flags[@]}"; } 2>&1)
    wall=$(echo "$(date +%s.%N) - $start" | bc -l)
    cpu=$(sed -n 's/^cpu \([0-9.]*\) \([0-9.]*\)$/\1 + \2/p' <<<"$out" | bc -l)
    missed=$(sed -n 's/.*no face found in \([0-9]*\) images.*/\1/p' <<<"$out")
    found=$([[ $mode == face-crop ]] && echo "$((count - ${missed:-0})) of $count" || echo "-")
    printf '%-9s %-12s %7d %10.0f %12.2f %s\n' "$set" "$mode" "$count" "$(echo "$count / $wall" | bc -l)" \
      "$(echo "1000 * $cpu / $count" | bc -l)" "$found"
  done
done
