#!/usr/bin/env bash
# Depthwise convolutions in EfficientNet-Lite0's shapes (224 and 96, batch 32): pretune's kernel,
# Burn's grouped convolution and PyTorch, alternating, ROUNDS rounds (3), THREADS threads on
# both sides (2); then per shape the median of the rounds, and the totals of one Lite0 pass.
#   bench/depthwise.sh            # PYTHON=/opt/torch-venv/bin/python by default
# Run on a quiet machine: with 2 cores, a concurrent job makes 2-thread PyTorch numbers jump by
# a scheduler slice (~30 ms) per call.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
ROUNDS=${ROUNDS:-3}
export THREADS=${THREADS:-2}
OUT=${OUT:-bench/results/depthwise.txt}
cargo bench ${FEATURES:+--features $FEATURES} --bench depthwise --no-run
BIN=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/depthwise-* | grep -v '\.d$' | head -1)
: > "$OUT"
for round in $(seq "$ROUNDS"); do
  echo "== round $round, load $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT"
  "$BIN" | tee -a "$OUT"
  PRETUNE_BURN_KERNELS=1 "$BIN" | tee -a "$OUT"
  "$PYTHON" bench/torch_depthwise.py --threads "$THREADS" | tee -a "$OUT"
done
python3 - "$OUT" <<'PY'
import re, statistics as st, sys
side, rows = None, {}
for line in open(sys.argv[1]):
    if "pretune's" in line: side = "pretune"
    elif "Burn's" in line: side = "burn"
    elif line.startswith("torch"): side = "pytorch"
    m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+x\d+)\s+\S+\s+([\d.]+)\s+([\d.]+)\s+(\S+)", line)
    if m:
        res, c, k, s, size, f, b, blocks = m.groups()
        key = (int(res), int(c), int(k), int(s), size, len(blocks.split(",")))
        rows.setdefault(key, {}).setdefault(side, []).append((float(f), float(b)))
print("\nmedians over rounds, ms (forward / forward+backward)")
print(f"{'res':>4} {'C':>5} {'k':>2} {'s':>2} {'in':>8} | {'pretune':>15} | {'Burn':>15} | {'PyTorch':>15}")
totals = {}
for key in sorted(rows, key=lambda k: (-k[0], k[1], k[2], k[3])):
    cells = []
    for side in ["pretune", "burn", "pytorch"]:
        runs = rows[key].get(side, [])
        f, b = (st.median(r[0] for r in runs), st.median(r[1] for r in runs)) if runs else (0, 0)
        t = totals.setdefault((key[0], side), [0.0, 0.0])
        t[0] += f * key[5]; t[1] += b * key[5]
        cells.append(f"{f:6.2f} / {b:6.2f}")
    print(f"{key[0]:>4} {key[1]:>5} {key[2]:>2} {key[3]:>2} {key[4]:>8} | " + " | ".join(cells))
for res in sorted({r for r, _ in totals}, reverse=True):
    p, b, t = (totals[(res, s)] for s in ["pretune", "burn", "pytorch"])
    print(f"{res}: one Lite0 pass, pretune {p[0]:.1f} / {p[1]:.1f}, Burn {b[0]:.1f} / {b[1]:.1f}, "
          f"PyTorch {t[0]:.1f} / {t[1]:.1f}; PyTorch / pretune {t[0]/p[0]:.2f}x / {t[1]/p[1]:.2f}x")
PY
