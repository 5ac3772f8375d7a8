# The run configs of the end-to-end tests (sourced): a tiny ViT on a store, plus the sections a test needs.
# shellcheck shell=bash

# vit_config FILE SIZE STORE BATCH VAL_SPLIT [SECTION...]: writes FILE. SIZE: vit16 (width 16, 1 block) or vit32
# (width 32, 2 blocks); patches of 4 px, 2 heads. Each SECTION is one line ('schedule { max_steps: 6 }').
vit_config() {
  local file=$1 size=$2 store=$3 batch=$4 val=$5 width depth
  shift 5
  case $size in
    vit16) width=16 depth=1 ;;
    vit32) width=32 depth=2 ;;
    *) echo "vit_config: unknown size $size" >&2; return 2 ;;
  esac
  {
    echo "model { vit { patch_size: 4 width: $width depth: $depth heads: 2 mlp_ratio: 2 } }"
    echo "data { store: \"$store\" batch_size: $batch val_split: \"$val\" }"
    printf '%s\n' "$@"
  } > "$file"
}
