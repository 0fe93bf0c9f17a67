#!/usr/bin/env bash
# Run `pretune demo` on Fashion-MNIST, installing the dataset (Debian/Ubuntu package) when missing.
# Extra arguments go to the demo, e.g. `scripts/demo.sh --quick` or `--recipe plain`.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq dataset-fashion-mnist
fi

cargo run --release -- demo --data "$data" "$@"
