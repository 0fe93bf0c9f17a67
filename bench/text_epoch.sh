#!/usr/bin/env bash
# One epoch of fine-tuning all-MiniLM-L6-v2 on five fortunes topics (2,417 training texts, batch
# 32, AdamW 5e-5, max 256 tokens), pretune against PyTorch + transformers, 2 threads each,
# alternated ROUNDS times: throughput, and peak memory (resident set, from GNU time) of the whole
# process. pretune groups texts by length; PyTorch runs both ways.
#   bench/text_epoch.sh          (needs scripts/minilm.sh, apt-get install fortunes time, and
#                                 torch + transformers in $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
F=${PRETUNE_FORTUNES:-/usr/share/games/fortunes}
M=${PRETUNE_MINILM:-models/all-MiniLM-L6-v2}
P=${PRETUNE:-target/release/pretune}
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
ROUNDS=${ROUNDS:-1}
C=computers,politics,science,songs-poems,startrek
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# Peak resident memory in MiB of the command, written to $OUT/rss.
peak() { /usr/bin/time -f %M -o "$OUT/kb" "$@"; echo $(( $(cat "$OUT/kb") / 1024 )) > "$OUT/rss"; }
for r in $(seq 1 "$ROUNDS"); do
  peak $P --threads 2 finetune --from "$M" --data "$F" --classes $C --epochs 1 --batch-size 32 \
    --val-fraction 0 --seed 1 --out "$OUT/run" --overwrite > /dev/null
  python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).readline()); print(json.dumps({"framework": "pretune", "group_by_length": True, "epoch_seconds": round(r["seconds"], 1), "texts_per_s": round(r["examples_per_second"], 1), "peak_rss_mib": int(sys.argv[2])}))' "$OUT/run/metrics.jsonl" "$(cat "$OUT/rss")"
  for grouping in --group-by-length ""; do
    peak "$PYTHON" bench/torch_text.py "$M" --threads 2 $grouping > "$OUT/torch.json"
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); r["peak_rss_mib"] = int(sys.argv[2]); print(json.dumps(r))' "$OUT/torch.json" "$(cat "$OUT/rss")"
  done
done
