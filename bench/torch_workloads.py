#!/usr/bin/env python3
"""PyTorch side of bench/workloads.rs (same workloads, same sizes, same thread count):

- minilm: all-MiniLM-L6-v2 (transformers BertModel) forward + backward, mean pooling, a 5-class
  head, cross-entropy; batch 16 x 128 tokens;
- adamw: one torch.optim.AdamW step over MiniLM's parameters (gradients set beforehand);
- load: reading the 60,000 Fashion-MNIST training images and labels (gzip IDX, numpy).

Prints one JSON line: {"framework", "workload", "per_second", "unit"}.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from torch_pretrain import read_idx  # bench/ is on sys.path


def seconds(warmup: int, steps: int, f) -> float:
    for _ in range(warmup):
        f()
    started = time.perf_counter()
    for _ in range(steps):
        f()
    return (time.perf_counter() - started) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workload", choices=["minilm", "adamw", "load"], default="minilm")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--model", default="models/all-MiniLM-L6-v2")
    p.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"framework": f"pytorch {torch.__version__}"}

    if a.workload in ("minilm", "adamw"):
        from transformers import BertModel
        bert = BertModel.from_pretrained(a.model, add_pooling_layer=False)
    if a.workload == "minilm":
        bert.train()
        batch, tokens = 16, 128
        head = torch.nn.Linear(384, 5)
        ids = (1000 + (torch.arange(batch * tokens) * 7919) % 20000).reshape(batch, tokens)
        mask = torch.ones(batch, tokens)
        labels = torch.arange(batch) % 5

        def step() -> None:
            hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            loss = torch.nn.functional.cross_entropy(head(pooled), labels)
            bert.zero_grad(set_to_none=True)
            loss.backward()

        s = seconds(1, a.steps, step)
        out.update(workload="minilm fwd+bwd 16x128", per_second=round(batch / s, 2), unit="texts/s")
    elif a.workload == "adamw":
        params = [p for p in bert.parameters()]
        for p in params:
            p.grad = p.detach() * 1e-3
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
        s = seconds(2, a.steps, opt.step)
        n = sum(p.numel() for p in params)
        out.update(workload=f"adamw update {n / 1e6:.1f}M params", per_second=round(1 / s, 2),
                   unit="updates/s")
    else:
        n = 0

        def load() -> None:
            nonlocal n
            images = torch.from_numpy(read_idx(a.data / "train-images-idx3-ubyte.gz"))
            labels = torch.from_numpy(read_idx(a.data / "train-labels-idx1-ubyte.gz"))
            n = len(images)
            assert len(labels) == n

        s = seconds(1, a.steps, load)
        out.update(workload=f"load fashion-mnist train ({n})", per_second=round(1 / s, 2),
                   unit="loads/s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
