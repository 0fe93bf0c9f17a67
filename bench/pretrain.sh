#!/usr/bin/env bash
# Whole-process comparison: `pretune pretrain` of the seed CNN on Fashion-MNIST against the same
# training in PyTorch (bench/torch_pretrain.py), alternated ROUNDS times, timed from outside
# (wall clock and peak resident memory from GNU time), medians and ratios printed.
#
#   bench/pretrain.sh                     # ROUNDS=3 EPOCHS=2 THREADS=2
#
# Env: DATA (/usr/share/datasets/fashion-mnist), ROUNDS (3), EPOCHS (2), THREADS (2),
#      PYTHON (/opt/torch-venv/bin/python, needs torch).
# Run on a quiet machine (see bench/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-/usr/share/datasets/fashion-mnist} ROUNDS=${ROUNDS:-3} EPOCHS=${EPOCHS:-2}
THREADS=${THREADS:-2} PYTHON=${PYTHON:-/opt/torch-venv/bin/python}
OUT=bench/results/pretrain.tsv
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "error: GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }
"$PYTHON" -c 'import torch' || { echo "error: $PYTHON has no torch (set PYTHON=...)" >&2; exit 1; }
cargo build --release -q

mkdir -p bench/results
printf 'framework\twall_s\tpeak_rss_kb\n' > "$OUT"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
run() {  # framework command...
  local name=$1; shift
  echo "  $name: $*" >&2
  "$TIME" -f "%e %M" -o "$scratch/time" "$@" > "$scratch/log" 2>&1 || { cat "$scratch/log" >&2; exit 1; }
  grep -E '^epoch' "$scratch/log" | sed 's/^/    /' >&2
  read -r wall rss < "$scratch/time"
  printf '%s\t%s\t%s\n' "$name" "$wall" "$rss" >> "$OUT"
}
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  rm -rf "$scratch/ckpt"
  run pretune target/release/pretune pretrain --model cnn --data "$DATA" --epochs "$EPOCHS" \
    --batch-size 64 --optimizer adamw --lr 0.001 --val-fraction 0 --threads "$THREADS" \
    --out "$scratch/ckpt"
  run pytorch "$PYTHON" bench/torch_pretrain.py --data "$DATA" --epochs "$EPOCHS" \
    --batch-size 64 --lr 0.001 --threads "$THREADS" --out "$scratch/torch.pt"
done

python3 - "$OUT" <<'PY'
import csv, sys, statistics as st
rows = {}
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    rows.setdefault(r["framework"], []).append((float(r["wall_s"]), int(r["peak_rss_kb"])))
med = {fw: (st.median(w for w, _ in v), st.median(m for _, m in v), len(v)) for fw, v in rows.items()}
print("| | rounds | wall time (median) | peak memory (median) |")
print("|---|---:|---:|---:|")
for fw, (w, m, n) in med.items():
    print(f"| {fw} | {n} | {w:.1f} s | {m / 1024:.0f} MiB |")
(pw, pm, _), (tw, tm, _) = med["pretune"], med["pytorch"]
print(f"| pretune vs PyTorch | | {tw / pw:.2f}x faster | {tm / pm:.1f}x less memory |")
PY
