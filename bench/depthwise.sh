#!/usr/bin/env bash
# Depthwise convolutions in EfficientNet-Lite0's shapes (224 and 96, batch 32, 2 threads):
# pretune's kernel, Burn's grouped convolution and PyTorch, alternating, ROUNDS rounds (2),
# THREADS threads on both sides (2).
#   bench/depthwise.sh            # PYTHON=/opt/torch-venv/bin/python by default
# Run on a quiet machine: with 2 cores, a concurrent build makes the numbers swing by 10x.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
ROUNDS=${ROUNDS:-2}
export THREADS=${THREADS:-2}
cargo bench --bench depthwise --no-run
BIN=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/depthwise-* | grep -v '\.d$' | head -1)
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  "$BIN"
  PRETUNE_BURN_KERNELS=1 "$BIN"
  "$PYTHON" bench/torch_depthwise.py --threads "$THREADS"
done
