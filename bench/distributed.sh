#!/usr/bin/env bash
# Data-parallel costs on this machine: the gradient all-reduce of each model's size between 2
# ranks (bench/allreduce.rs), and one CNN epoch as 1 process × 2 threads against 2 ranks ×
# 1 thread (mpirun), alternated ROUNDS times.
#   bench/distributed.sh     (needs `cargo build --release --features mpi --bench allreduce`,
#                             Open MPI and Fashion-MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PRETUNE:-target/release/pretune}
D=${PRETUNE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
ROUNDS=${ROUNDS:-3}
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
BENCH=$(ls -t target/release/deps/allreduce-* | grep -v '\.d$' | head -1)
"${MPIRUN[@]}" -np 2 "$BENCH" --rounds 20
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ARGS="pretrain --data $D --classes 0-9 --epochs 1 --batch-size 64 --val-fraction 0 --seed 1"
rate() { python3 -c 'import json,sys; print(round(json.loads(open(sys.argv[1]).readline())["examples_per_second"]))' "$1/metrics.jsonl"; }
for r in $(seq 1 "$ROUNDS"); do
  $P --threads 2 $ARGS --out "$OUT/one" --overwrite > /dev/null
  "${MPIRUN[@]}" -np 2 $P --threads 1 $ARGS --out "$OUT/two" --overwrite > /dev/null
  echo "{\"round\": $r, \"one_process_2_threads_img_s\": $(rate "$OUT/one"), \"two_ranks_1_thread_img_s\": $(rate "$OUT/two")}"
done
