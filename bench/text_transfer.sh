#!/usr/bin/env bash
# Fine-tuned MiniLM against BERT-Mini from scratch on five fortunes topics, 2 epochs each, test
# accuracy on the content-hashed test split. Needs `apt-get install fortunes` and scripts/minilm.sh.
#   bench/text_transfer.sh [OUT_DIR]
set -euo pipefail
F=${PRETUNE_FORTUNES:-/usr/share/games/fortunes}
M=${PRETUNE_MINILM:-models/all-MiniLM-L6-v2}
OUT=${1:-runs/text-transfer}
P=${PRETUNE:-target/release/pretune}
C=computers,politics,science,songs-poems,startrek
N=${PER_CLASS:-100}  # training texts per topic (the full 2,417 take ~25 min per MiniLM epoch on 2 cores)
mkdir -p "$OUT"
# HF Trainer's rate for fine-tuning a pretrained encoder; a larger one for a model from scratch.
$P finetune --from "$M" --data "$F" --classes $C --per-class $N --epochs 2 --batch-size 32 --lr 5e-5 \
  --label-smoothing 0 --seed 1 --out "$OUT/minilm"
$P pretrain --model bert-mini --data "$F" --classes $C --per-class $N --epochs 2 --batch-size 32 --lr 1e-3 \
  --label-smoothing 0 --seed 1 --out "$OUT/scratch"
for run in minilm scratch; do
  printf '%s: ' "$run"
  $P eval --model "$OUT/$run" --data "$F" --json |
    python3 -c 'import json, sys; print("%.2f%% test accuracy" % (100 * json.load(sys.stdin)["accuracy"]))'
done
