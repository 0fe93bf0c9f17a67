#!/usr/bin/env python3
"""PyTorch twin of `pretune pretrain --model cnn --data <fashion-mnist> --epochs E --batch-size B
--optimizer adamw --lr 0.001 --val-fraction 0 --threads T`: the same whole process, timed from
outside (bench/pretrain.sh) — read the IDX files, normalise with the training set's mean/std,
train the seed CNN with pretune's image recipe (AdamW with weight decay 0.01 except on biases,
0.1 epoch of linear warm-up then cosine decay per step, label smoothing 0.1, a fresh shuffle
every epoch), print one line per epoch, save the weights.

Data is batched by indexing one preloaded tensor (the fastest plain-PyTorch way for an in-memory
set; a DataLoader over a TensorDataset is slower).
"""
import argparse
import gzip
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from torch_cnn import seed_cnn  # the same model as the step benchmark (bench/ is on sys.path)


def read_idx(path: Path) -> np.ndarray:
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/torch-pretrain.pt"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    images = read_idx(a.data / "train-images-idx3-ubyte.gz")
    labels = torch.from_numpy(read_idx(a.data / "train-labels-idx1-ubyte.gz").astype(np.int64))
    x = torch.from_numpy(images).float().div_(255.0)
    mean, std = x.mean().item(), x.std().item()
    x = x.sub_(mean).div_(std).unsqueeze(1).contiguous()
    n = len(x)

    model = seed_cnn()
    decay = [p for name, p in model.named_parameters() if not name.endswith("bias")]
    no_decay = [p for name, p in model.named_parameters() if name.endswith("bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    steps_per_epoch = math.ceil(n / a.batch_size)
    total, warmup = steps_per_epoch * a.epochs, round(0.1 * steps_per_epoch)

    def lr_at(step: int) -> float:
        if step < warmup:
            return a.lr * (step + 1) / warmup
        return a.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    step = 0
    for epoch in range(1, a.epochs + 1):
        started, loss_sum, correct = time.time(), 0.0, 0
        model.train()
        for idx in torch.randperm(n).split(a.batch_size):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            xb, yb = x[idx], labels[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            step += 1
        seconds = time.time() - started
        print(f"epoch {epoch}/{a.epochs}  loss {loss_sum / n:.4f}  acc {correct / n:.4f}  "
              f"{n / seconds:.0f} img/s  {seconds:.1f}s", flush=True)
    torch.save(model.state_dict(), a.out)


if __name__ == "__main__":
    main()
