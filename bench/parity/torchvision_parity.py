"""Parity of pretune with PyTorch/torchvision, measured from outside.

For each architecture: a torchvision model with random weights and non-trivial BatchNorm
statistics is saved as F16 safetensors (and, for some, as a torch.save pickle with a
{"state_dict": ...} wrapper and "module." prefixes); pretune imports it, computes logits for
the same normalised input (`pretune predict --tensor --raw-logits`), and the script reports the
largest difference relative to the largest logit. Then `pretune export --format torch` is
loaded back with load_state_dict(strict=True) and compared tensor by tensor.

    /opt/torch-venv/bin/python bench/parity/torchvision_parity.py [ARCH ...]

Needs torch + torchvision (never part of pretune or its CI), and efficientnet-lite-pytorch for
efficientnet_lite*.
"""
import json, os, subprocess, sys, tempfile

import torch
import torchvision
from safetensors.torch import load_file, save_file
from torch import nn

PRETUNE = os.environ.get("PRETUNE", "target/release/pretune")


class Net(nn.Module):
    """The seed's CNN (conv1, conv2, fc1, fc2), as bench/torch_cnn.py."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def build(arch):
    if arch == "cnn":
        return Net(), (1, 28, 28)
    if arch.startswith("efficientnet_lite"):
        # pip install --no-deps efficientnet-lite-pytorch==0.1.0 (the package its weights load into)
        from efficientnet_lite_pytorch import EfficientNet
        size = {"0": 224, "1": 240, "2": 260}[arch[-1]]
        return EfficientNet.from_name(arch.replace("_", "-")), (3, size, size)
    if arch == "inception_v3":
        m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True, transform_input=False)
        return m, (3, 299, 299)
    return getattr(torchvision.models, arch)(weights=None), (3, 224, 224)


def run(*args):
    out = subprocess.run([PRETUNE, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"pretune {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def check(arch, fmt):
    torch.manual_seed(0)
    model, shape = build(arch)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics and affine parameters
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        # torchvision starts ViT's head and class token at 0, ConvNeXt's layer scale at 1e-6,
        # LayerNorms at 1/0: constants that would hide layout mistakes.
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.2, 1.0)
            elif float((p - p.mean()).abs().max()) < 1e-4:
                p.copy_(round(p.mean().item()) + 0.2 * torch.randn(p.shape))
    model.eval()
    d = tempfile.mkdtemp()
    state = model.state_dict()
    if fmt == "f16":
        weights = f"{d}/w.safetensors"
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        save_file({k: v.contiguous() for k, v in half.items()}, weights)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    else:
        weights = f"{d}/w.pth"
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, weights)
    x = torch.randn(2, *shape)
    save_file({"input": x}, f"{d}/in.safetensors")
    with torch.no_grad():
        expected = model(x)
        if isinstance(expected, tuple):
            expected = expected[0]
    run("import", "--arch", arch, "--weights", weights, "--out", f"{d}/ckpt")
    run("predict", "--model", f"{d}/ckpt", "--tensor", f"{d}/in.safetensors", "--raw-logits", f"{d}/out.safetensors")
    got = load_file(f"{d}/out.safetensors")["logits"]
    rel = ((got - expected).abs().max() / expected.abs().max()).item()
    run("export", "--model", f"{d}/ckpt", "--format", "torch", "--out", f"{d}/back.safetensors")
    back = load_file(f"{d}/back.safetensors")
    fresh, _ = build(arch)
    missing = fresh.load_state_dict(back, strict=False)
    # num_batches_tracked is a counter, not a weight; PyTorch fills it in when absent.
    missing_keys = [k for k in missing.missing_keys if not k.endswith("num_batches_tracked")]
    ref = model.state_dict()
    worst = max((back[k] - ref[k].float()).abs().max().item() for k in back)
    return {"arch": arch, "format": fmt, "max_rel_logit_error": rel, "export_missing": missing_keys,
            "export_unexpected": missing.unexpected_keys, "export_max_abs_diff": worst}


if __name__ == "__main__":
    archs = sys.argv[1:] or ["cnn", "resnet18", "resnet50", "vgg11_bn", "vgg16", "inception_v3"]
    for arch in archs:
        for fmt in ["f16", "pth"]:
            print(json.dumps(check(arch, fmt)), flush=True)
