#!/usr/bin/env python3
"""PyTorch CPU benchmark of pretune's vision models (for side-by-side with bench/cnn.rs):
--model cnn (the seed CNN, 1x28x28) or resnet18 (torchvision's, with the small-input stem,
3x32x32; needs torchvision).

Prints exactly one JSON line on stdout:
{"framework": "pytorch <version>", "threads": T, "batch": B,
 "train_images_per_s": X, "infer_images_per_s": Y}
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def seed_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def resnet18_small() -> nn.Module:
    import torchvision
    m = torchvision.models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=["cnn", "resnet18"], default="cnn")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=100, help="timed train steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed warmup steps (train and infer)")
    p.add_argument("--infer-batch", type=int, default=500)
    p.add_argument("--infer-steps", type=int, default=20)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = seed_cnn() if a.model == "cnn" else resnet18_small()
    shape = (1, 28, 28) if a.model == "cnn" else (3, 32, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    # Data is made once, before any timing.
    x = torch.randn(a.batch, *shape)
    y = torch.randint(0, 10, (a.batch,))
    xi = torch.randn(a.infer_batch, *shape)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(a.warmup):
        train_step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        train_step()
    train_s = time.perf_counter() - t0

    model.eval()
    with torch.inference_mode():
        for _ in range(a.warmup):
            model(xi)
        t0 = time.perf_counter()
        for _ in range(a.infer_steps):
            model(xi)
        infer_s = time.perf_counter() - t0

    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "model": a.model,
        "threads": a.threads,
        "batch": a.batch,
        "train_images_per_s": round(a.steps * a.batch / train_s, 1),
        "infer_images_per_s": round(a.infer_steps * a.infer_batch / infer_s, 1),
    }))


if __name__ == "__main__":
    main()
