#!/usr/bin/env bash
# One epoch of fine-tuning all-MiniLM-L6-v2 on five fortunes topics (2,417 training texts, batch
# 32, AdamW 5e-5, max 256 tokens), pretune against PyTorch + transformers, 2 threads each,
# alternated ROUNDS times. pretune groups texts by length; PyTorch runs both ways.
#   bench/text_epoch.sh          (needs scripts/minilm.sh, apt-get install fortunes, and torch +
#                                 transformers in $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
F=${PRETUNE_FORTUNES:-/usr/share/games/fortunes}
M=${PRETUNE_MINILM:-models/all-MiniLM-L6-v2}
P=${PRETUNE:-target/release/pretune}
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
ROUNDS=${ROUNDS:-1}
C=computers,politics,science,songs-poems,startrek
OUT=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  $P --threads 2 finetune --from "$M" --data "$F" --classes $C --epochs 1 --batch-size 32 \
    --val-fraction 0 --seed 1 --out "$OUT/run" > /dev/null
  python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).readline()); print(json.dumps({"framework": "pretune", "group_by_length": True, "epoch_seconds": round(r["seconds"], 1), "texts_per_s": round(r["images_per_second"], 1)}))' "$OUT/run/metrics.jsonl"
  "$PYTHON" bench/torch_text.py "$M" --threads 2 --group-by-length
  "$PYTHON" bench/torch_text.py "$M" --threads 2
done
rm -rf "$OUT"
