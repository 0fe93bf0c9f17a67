"""Two small fixtures for pretune's EfficientNet-Lite layouts and ViT position-embedding resampling.

    /opt/torch-venv/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0
    /opt/torch-venv/bin/python bench/parity/vision_extra_fixtures.py

Writes into tests/fixtures/ (tests never run Python):
- efficientnet_keys.json: {"efficientnet_lite0": [[name, shape], ...], "..._lite1", "..._lite2"}:
  the state_dict of EfficientNet.from_name('efficientnet-liteN') (efficientnet_lite_pytorch
  0.1.0, the package the real weights load into), in the format of torchvision_keys.json
  (num_batches_tracked left out).
- vit_pos_embed_resample.safetensors: `pos` [1, 1 + 14*14, 8] (N(0, 1), seed 0) and what timm's
  resample_abs_pos_embed(pos, new_size, num_prefix_tokens=1) gives for it (timm's code,
  restated below because timm is not installed here: class token kept, the grid resized with
  F.interpolate(mode='bicubic', antialias=True, align_corners=False)):
    `grow` to 20x20 [1, 401, 8] and `shrink` to 5x5 [1, 26, 8].
"""
import json, os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from efficientnet_lite_pytorch import EfficientNet

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")


def resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1):
    """timm.layers.pos_embed.resample_abs_pos_embed (interpolation='bicubic', antialias=True)."""
    num_pos_tokens = posemb.shape[1] - num_prefix_tokens
    hw = int(num_pos_tokens ** 0.5)
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    d = posemb.shape[-1]
    grid = grid.float().reshape(1, hw, hw, d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, d)
    return torch.cat([prefix, grid], dim=1)


def main():
    keys = {}
    for v in (0, 1, 2):
        model = EfficientNet.from_name(f"efficientnet-lite{v}")
        keys[f"efficientnet_lite{v}"] = [[k, list(t.shape)] for k, t in model.state_dict().items()
                                         if not k.endswith("num_batches_tracked")]
    with open(os.path.join(FIXTURES, "efficientnet_keys.json"), "w") as f:
        json.dump(keys, f)
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 14 * 14, 8)
    save_file({"pos": pos, "grow": resample_abs_pos_embed(pos, [20, 20]).contiguous(),
               "shrink": resample_abs_pos_embed(pos, [5, 5]).contiguous()},
              os.path.join(FIXTURES, "vit_pos_embed_resample.safetensors"))
    print({k: len(v) for k, v in keys.items()})


if __name__ == "__main__":
    main()
