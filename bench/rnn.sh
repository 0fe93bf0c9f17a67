#!/usr/bin/env bash
# GRU/LSTM layers side by side with PyTorch in one run: times and pretune/PyTorch ratios.
#   bench/rnn.sh   (needs /opt/torch-venv, see bench/README or the README's Benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-/opt/torch-venv/bin/python}
ours=$(cargo bench --bench rnn --features "${FEATURES:-wgpu,mpi}" 2>/dev/null | grep " ms$")
theirs=$("$python" bench/torch_rnn.py)
printf '%-44s %12s %12s %8s\n' "workload" "pretune ms" "pytorch ms" "ratio"
while IFS= read -r line; do
    name=$(echo "$line" | sed -E 's/ +[0-9.]+ ms$//')
    ms=$(echo "$line" | grep -oE '[0-9.]+ ms$' | cut -d' ' -f1)
    torch=$(echo "$theirs" | grep -F "$name " | grep -oE '[0-9.]+ ms$' | cut -d' ' -f1)
    printf '%-44s %12s %12s %8.2f\n' "$name" "$ms" "$torch" "$(echo "$ms / $torch" | bc -l)"
done <<< "$ours"
