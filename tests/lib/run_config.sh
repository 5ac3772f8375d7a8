# The run configs of the end-to-end tests (sourced): a model on a store, plus the sections a test needs.
# shellcheck shell=bash

# run_config FILE MODEL STORE BATCH VAL_SPLIT [SECTION...]: writes FILE. MODEL is the model block's inside
# ('cnn { width: 8 }'); each SECTION is one line ('schedule { max_steps: 6 }').
run_config() {
  local file=$1 model=$2 store=$3 batch=$4 val=$5
  shift 5
  {
    echo "model { $model }"
    echo "data { store: \"$store\" batch_size: $batch val_split: \"$val\" }"
    printf '%s\n' "$@"
  } > "$file"
}

# vit_config FILE SIZE STORE BATCH VAL_SPLIT [SECTION...]: run_config of a tiny ViT. SIZE: vit16 (width 16,
# 1 block) or vit32 (width 32, 2 blocks); patches of 4 px, 2 heads.
vit_config() {
  local file=$1 size=$2 width depth
  shift 2
  case $size in
    vit16) width=16 depth=1 ;;
    vit32) width=32 depth=2 ;;
    *) echo "vit_config: unknown size $size" >&2; return 2 ;;
  esac
  run_config "$file" "vit { patch_size: 4 width: $width depth: $depth heads: 2 mlp_ratio: 2 }" "$@"
}
