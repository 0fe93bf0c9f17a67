#!/usr/bin/env bash
# Side-by-side CPU benchmark of a vision model: pretune (Burn flex) vs PyTorch.
#
#   bench/run.sh                  # build + run ROUNDS alternating rounds, print table
#   bench/run.sh --table FILE     # only print the table for an existing .jsonl
#
# Env: MODEL (cnn | resnet18: small-input, 3x32x32), THREADS (2), BATCH (64), STEPS (100), ROUNDS (3),
#      WARMUP (10 untimed steps), INFER_BATCH (500), INFER_STEPS (20),
#      PYTHON (/opt/torch-venv/bin/python, needs torch; see bench/torch_cnn.py).
# ResNet-18 takes seconds a step here: MODEL=resnet18 STEPS=6 WARMUP=2 INFER_BATCH=256 INFER_STEPS=4
# Raw JSON lines go to bench/results/latest.jsonl.
# Run on a quiet machine: with 2 cores, a concurrent build makes 2-thread numbers
# swing by 10x (OpenMP/rayon threads fighting for cores).
# Note: `cargo bench` appends `--bench` to the bench binary's arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-cnn} THREADS=${THREADS:-2} BATCH=${BATCH:-64} STEPS=${STEPS:-100} ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-10} INFER_BATCH=${INFER_BATCH:-500} INFER_STEPS=${INFER_STEPS:-20}
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
OUT=bench/results/latest.jsonl

table() {  # median per framework + ratio row, as markdown
  python3 - "$1" <<'PY'
import json, sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        rows.setdefault(r["framework"], []).append(r)
med = {fw: (st.median(r["train_images_per_s"] for r in rs),
            st.median(r["infer_images_per_s"] for r in rs), len(rs), rs[0]["threads"], rs[0]["batch"])
       for fw, rs in rows.items()}
print("| framework | threads | batch | rounds | train img/s (median) | infer img/s (median) |")
print("|---|---:|---:|---:|---:|---:|")
for fw, (tr, inf, n, t, b) in med.items():
    print(f"| {fw} | {t} | {b} | {n} | {tr:.1f} | {inf:.1f} |")
ours = [m for fw, m in med.items() if fw.startswith("pretune")]
torch = [m for fw, m in med.items() if fw.startswith("pytorch")]
if ours and torch:
    (a, b), (c, d) = ours[0][:2], torch[0][:2]
    print(f"| ratio pretune / pytorch | | | | {a / c:.2f}x | {b / d:.2f}x |")
PY
}

if [[ ${1:-} == --table ]]; then table "${2:?usage: run.sh --table FILE}"; exit; fi

"$PYTHON" -c 'import torch' || { echo "error: $PYTHON has no torch (set PYTHON=...)" >&2; exit 1; }
cargo bench --bench cnn --no-run

mkdir -p bench/results
: > "$OUT"
ARGS=(--model "$MODEL" --threads "$THREADS" --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP"
      --infer-batch "$INFER_BATCH" --infer-steps "$INFER_STEPS")
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS: pretune ..." >&2
  cargo bench -q --bench cnn -- "${ARGS[@]}" | grep '^{' | tail -n1 | tee -a "$OUT" >&2
  echo "round $r/$ROUNDS: pytorch ..." >&2
  "$PYTHON" bench/torch_cnn.py "${ARGS[@]}" | tee -a "$OUT" >&2
done
echo >&2
table "$OUT"
