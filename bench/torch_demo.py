#!/usr/bin/env python3
"""PyTorch reference of `pretune demo --recipe plain` on Fashion-MNIST.

Pretrains the seed CNN on the --source classes, then for each labels-per-class budget
and seed trains scratch / linear-probe / finetune on the --target classes and reports
test accuracy (mean ± sample std over seeds). Per-run results go to --out as JSON lines.
"""
import argparse
import copy
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPOCHS = {10: 60, 100: 20, 1000: 5}
METHODS = ["scratch", "linear-probe", "finetune"]
VAL_PER_CLASS = 100  # held out (never trained on), as pretune does for its validation curves


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", ndim, 4).astype(int)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def seed_cnn(num_classes):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def restrict(x, y, classes):
    """Images of `classes`, labels remapped to 0..k-1 in the given order."""
    remap = {c: i for i, c in enumerate(classes)}
    keep = np.isin(y, classes)
    return x[keep], torch.tensor([remap[int(c)] for c in y[keep]])


def fit(model, x, y, epochs, seed, params=None):
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


@torch.inference_mode()
def accuracy(model, x, y):
    model.eval()
    pred = torch.cat([model(b).argmax(1) for b in x.split(1000)])
    return (pred == y).float().mean().item()


def with_new_head(pretrained, k, seed):
    model = copy.deepcopy(pretrained)
    torch.manual_seed(seed)
    model[-1] = nn.Linear(128, k)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--source", default="1,3,5,7,8,9")
    p.add_argument("--target", default="0,2,4,6")
    p.add_argument("--labels", default="10,100")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="bench/results/torch_demo.jsonl")
    a = p.parse_args()
    torch.set_num_threads(2)
    source = [int(c) for c in a.source.split(",")]
    target = [int(c) for c in a.target.split(",")]
    budgets = [int(n) for n in a.labels.split(",")]
    started = time.time()

    load = lambda name: read_idx(os.path.join(a.data, name))
    train_x, train_y = load("train-images-idx3-ubyte.gz"), load("train-labels-idx1-ubyte.gz")
    test_x, test_y = load("t10k-images-idx3-ubyte.gz"), load("t10k-labels-idx1-ubyte.gz")

    src_x, src_y = restrict(train_x, train_y, source)
    pix = src_x.astype(np.float64) / 255.0
    mean, std = np.float32(pix.mean()), np.float32(pix.std())
    norm = lambda x: torch.tensor((x.astype(np.float32) / 255.0 - mean) / std).unsqueeze(1)

    torch.manual_seed(0)
    pretrained = fit(seed_cnn(len(source)), norm(src_x), src_y, 3, seed=0)
    sx, sy = restrict(test_x, test_y, source)
    print(f"pretrained: {100 * accuracy(pretrained, norm(sx), sy):.2f}% on source test, "
          f"{time.time() - started:.0f} s")

    tgt_x, tgt_y = restrict(train_x, train_y, target)
    tgt_x = norm(tgt_x)
    te_x, te_y = restrict(test_x, test_y, target)
    te_x = norm(te_x)
    k = len(target)
    # Fixed held-out set: VAL_PER_CLASS random images per class, excluded from the label pool.
    rng = np.random.default_rng(0xDE30)
    pool = [rng.permutation(np.flatnonzero(tgt_y.numpy() == c))[VAL_PER_CLASS:] for c in range(k)]

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    acc = {}
    with open(a.out, "w") as out:
        for labels in budgets:
            epochs = EPOCHS[labels]
            for seed in range(a.seeds):
                rng = np.random.default_rng(seed)
                idx = torch.tensor(np.concatenate([rng.choice(c, labels, replace=False) for c in pool]))
                x, y = tgt_x[idx], tgt_y[idx]
                for method in METHODS:
                    t0 = time.time()
                    if method == "scratch":
                        torch.manual_seed(seed)
                        model = fit(seed_cnn(k), x, y, epochs, seed)
                    elif method == "linear-probe":
                        model = with_new_head(pretrained, k, seed)
                        for prm in model[:-1].parameters():
                            prm.requires_grad_(False)
                        model = fit(model, x, y, epochs, seed, model[-1].parameters())
                    else:
                        model = fit(with_new_head(pretrained, k, seed), x, y, epochs, seed)
                    a_ = accuracy(model, te_x, te_y)
                    acc.setdefault((labels, method), []).append(100 * a_)
                    rec = dict(source=source, target=target, labels_per_class=labels, seed=seed,
                               method=method, epochs=epochs, test_accuracy=a_,
                               seconds=round(time.time() - t0, 2))
                    out.write(json.dumps(rec) + "\n")
                    print(f"{labels:>5} {seed:>2} {method:<13} {100 * a_:6.2f}%", flush=True)

    print(f"\nsource {a.source} -> target {a.target}, {a.seeds} seeds, "
          f"{time.time() - started:.0f} s total\n")
    print("| labels/class | " + " | ".join(METHODS) + " |")
    print("|---:|" + "---:|" * len(METHODS))
    for labels in budgets:
        cells = []
        for m in METHODS:
            v = np.array(acc[(labels, m)])
            cells.append(f"{v.mean():.2f}% ± {v.std(ddof=1) if len(v) > 1 else 0.0:.2f}")
        print(f"| {labels} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
