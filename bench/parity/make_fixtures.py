"""Regenerate tests/fixtures from PyTorch/torchvision (needs torch + torchvision; not run by CI).

- torchvision_keys.json: every tensor name and shape of torchvision's state_dicts for the
  architectures pretune mirrors (num_batches_tracked left out), to check the layouts match.
- seed_net.safetensors: the seed's PyTorch Net (conv1, conv2, fc1, fc2) with random F16
  weights, an input batch, and the logits PyTorch computes for it.

    /opt/torch-venv/bin/python bench/parity/make_fixtures.py
"""
import json, os, sys

import torch
import torchvision
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from torchvision_parity import Net  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg11_bn",
         "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "inception_v3"]

keys = {}
for arch in ARCHS:
    kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
    model = getattr(torchvision.models, arch)(weights=None, **kwargs)
    keys[arch] = [[k, list(v.shape)] for k, v in model.state_dict().items()
                  if not k.endswith("num_batches_tracked")]
with open(os.path.join(OUT, "torchvision_keys.json"), "w") as f:
    json.dump(keys, f, separators=(",", ":"))

torch.manual_seed(7)
net = Net().eval()
half = {k: v.half() for k, v in net.state_dict().items()}
net.load_state_dict({k: v.float() for k, v in half.items()})
x = torch.randn(4, 1, 28, 28)
with torch.no_grad():
    logits = net(x)
save_file({**half, "input": x, "logits": logits}, os.path.join(OUT, "seed_net.safetensors"))
print("wrote", OUT)
