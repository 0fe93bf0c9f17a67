#!/usr/bin/env bash
# The other side-by-side workloads (bench/workloads.rs vs bench/torch_workloads.py): MiniLM
# forward + backward (16 × 128 tokens), an AdamW update of MiniLM's 22.7M parameters, loading the
# 60k Fashion-MNIST training set. Alternates the two ROUNDS times and prints medians and ratios.
#
#   bench/workloads.sh                     # all three
#   WORKLOADS="adamw load" bench/workloads.sh
#
# Env: WORKLOADS (minilm adamw load), ROUNDS (3), THREADS (2), STEPS (5),
#      PYTHON (/opt/torch-venv/bin/python, needs torch and transformers).
# MiniLM comes from scripts/minilm.sh. Run on a quiet machine (see bench/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKLOADS=${WORKLOADS:-minilm adamw load} ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-2} STEPS=${STEPS:-5}
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
OUT=bench/results/workloads.jsonl
"$PYTHON" -c 'import torch, transformers' || { echo "error: $PYTHON needs torch and transformers" >&2; exit 1; }
[[ -d models/all-MiniLM-L6-v2 ]] || scripts/minilm.sh
cargo bench --bench workloads --features "${FEATURES:-wgpu,mpi}" --no-run

mkdir -p bench/results
: > "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    ARGS=(--workload "$w" --threads "$THREADS" --steps "$STEPS")
    echo "round $r/$ROUNDS $w: pretune ..." >&2
    cargo bench -q --bench workloads --features "${FEATURES:-wgpu,mpi}" -- "${ARGS[@]}" | grep '^{' | tee -a "$OUT" >&2
    echo "round $r/$ROUNDS $w: pytorch ..." >&2
    "$PYTHON" bench/torch_workloads.py "${ARGS[@]}" 2>/dev/null | tee -a "$OUT" >&2
  done
done

python3 - "$OUT" <<'PY'
import json, sys, statistics as st
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    side = "pretune" if r["framework"].startswith("pretune") else "pytorch"
    key = r["workload"].split(" ")[0]
    runs.setdefault(key, {"name": r["workload"], "unit": r["unit"]}).setdefault(side, []).append(r["per_second"])
print("| workload | unit | pretune (median) | PyTorch (median) | pretune / PyTorch |")
print("|---|---|---:|---:|---:|")
for key, r in runs.items():
    a, b = st.median(r["pretune"]), st.median(r["pytorch"])
    print(f"| {r['name']} | {r['unit']} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
PY
