#!/usr/bin/env bash
# What the feature cache buys: the same linear probe (frozen backbone, new head) with the
# backbone's features computed once, and with the backbone run on every batch.
#
#   bench/feature_cache.sh            # PER_CLASS (1000) images per class, EPOCHS (10)
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-/usr/share/datasets/fashion-mnist}
PER_CLASS=${PER_CLASS:-1000} EPOCHS=${EPOCHS:-10}
cargo build --release -q
P=target/release/pretune
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$P pretrain --data "$D" --classes 1,3,5,7,8,9 --per-class 1000 --epochs 1 --out "$tmp/source" > /dev/null
probe() {
    local start end
    start=$(date +%s.%N)
    $P finetune --from "$tmp/source" --data "$D" --classes 0,2,4,6 --per-class "$PER_CLASS" --epochs "$EPOCHS" \
        --val-fraction 0 --strategy linear-probe --out "$tmp/probe" "$@" > /dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
cached=$(probe)
uncached=$(probe --no-feature-cache)
echo "| linear probe, $((PER_CLASS * 4)) images x $EPOCHS epochs | seconds |"
echo "|---|---:|"
echo "| backbone on every batch | $uncached |"
echo "| features cached once | $cached |"
echo "| speed-up | $(awk -v a="$uncached" -v b="$cached" 'BEGIN { printf "%.1f", a / b }')x |"
