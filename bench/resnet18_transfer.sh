#!/usr/bin/env bash
# ResNet-18 (small-input) transfer on Fashion-MNIST: pretrain on classes 0-4, then learn 5-9
# from 100 labels per class by fine-tuning, against the same network trained from scratch.
#   bench/resnet18_transfer.sh [OUT_DIR]     (about 15 minutes on 2 cores)
set -euo pipefail
D=${PRETUNE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
OUT=${1:-runs/resnet18-transfer}
P=${PRETUNE:-target/release/pretune}
mkdir -p "$OUT"
$P pretrain --model resnet18 --small-input --data "$D" --classes 0-4 --per-class 600 \
  --epochs 3 --out "$OUT/source" --seed 1
common=(--data "$D" --classes 5-9 --per-class 100 --epochs 5 --batch-size 32 --seed 1)
$P finetune --from "$OUT/source" "${common[@]}" --out "$OUT/finetune"
$P pretrain --model resnet18 --small-input "${common[@]}" --out "$OUT/scratch"
for run in finetune scratch; do
  printf '%s: ' "$run"
  $P eval --model "$OUT/$run" --data "$D" --json |
    python3 -c 'import json, sys; print("%.2f%% test accuracy" % (100 * json.load(sys.stdin)["accuracy"]))'
done
