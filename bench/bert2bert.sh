#!/usr/bin/env bash
# One epoch of BERT2BERT warm-started from all-MiniLM-L6-v2 on 1,000 Debian description pairs
# (batch 8, AdamW, sources cut to 32 tokens, targets to 16, label smoothing 0.1), pretune against
# PyTorch + transformers' EncoderDecoderModel (bench/torch_bert2bert.py), 2 threads each,
# alternated ROUNDS times: training pairs/s, the whole model learning and (pretune) with its
# encoder frozen (--strategy decoder-only).
#   bench/bert2bert.sh   (needs scripts/minilm.sh and torch + transformers in $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PRETUNE:-target/release/pretune}
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
ROUNDS=${ROUNDS:-1}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# The same 1,000 training pairs for both (the corpus's train rows, seeded draw).
python3 - "$OUT/pairs.jsonl" <<'PY'
import gzip, json, random, sys
rows = [json.loads(l) for l in gzip.open("data/debian-descriptions.jsonl.gz", "rt")]
train = [r for r in rows if r["split"] == "train"]
random.seed(0)
with open(sys.argv[1], "w") as f:
    for r in random.sample(train, 1000):
        f.write(json.dumps({"text": r["text"], "summary": r["summary"], "split": "train"}) + "\n")
PY
ours() {
  rm -rf "$OUT/run"
  $P --threads 2 finetune --from models/all-MiniLM-L6-v2 --data "$OUT/pairs.jsonl" \
    --source-column text --target-column summary --max-source-length 32 --max-target-length 16 \
    --epochs 1 --batch-size 8 --val-fraction 0 --out "$OUT/run" "$@" > /dev/null
  python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).readline()); print(round(r["examples_per_second"], 1))' "$OUT/run/metrics.jsonl"
}
printf '%-6s %-28s %10s\n' round run "pairs/s"
for r in $(seq 1 "$ROUNDS"); do
  printf '%-6s %-28s %10s\n' "$r" "pretune, all learn" "$(ours)"
  printf '%-6s %-28s %10s\n' "$r" "pretune, decoder-only" "$(ours --strategy decoder-only)"
  for frozen in "" --freeze-encoder; do
    name=$([[ -z $frozen ]] && echo "PyTorch, all learn" || echo "PyTorch, encoder frozen")
    rate=$("$PYTHON" bench/torch_bert2bert.py models/all-MiniLM-L6-v2 --data "$OUT/pairs.jsonl" \
      --pairs 1000 --epochs 1 --test-pairs 0 $frozen 2>/dev/null \
      | python3 -c 'import json, sys; print([json.loads(l) for l in sys.stdin if l.startswith("{")][0]["pairs_per_s"])')
    printf '%-6s %-28s %10s\n' "$r" "$name" "$rate"
  done
done
