#!/usr/bin/env bash
# Run `pretune demo` on Fashion-MNIST, or with `text` first `pretune demo text` on fortunes topics
# (`g2p`: `pretune demo g2p` on British pronunciations; `speech`: `pretune demo speech`, Whisper
# tiny.en on synthetic and real spoken card names; `summarize`: `pretune demo summarize`, BERT2BERT
# warm-started from MiniLM on Debian package descriptions).
# First installs what is missing (scripts/setup.sh: the datasets, libraries and pretrained
# models the demos and the tests use), and builds with the same features as the tests, so the
# README's second command reuses this build.
# Extra arguments go to the demo, e.g. `scripts/demo.sh --quick`, `--recipe plain`, `text --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --features wgpu,mpi -- demo "$@"
