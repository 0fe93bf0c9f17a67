#!/usr/bin/env python3
"""PyTorch twin of bench/rnn.rs: nn.GRU / nn.LSTM forward and forward + backward, same shapes,
same names, 2 threads."""
import time

import torch
import torch.nn as nn


def timed(name: str, runs: int, f) -> None:
    for _ in range(2):
        f()
    started = time.perf_counter()
    for _ in range(runs):
        f()
    print(f"{name:44} {(time.perf_counter() - started) * 1e3 / runs:9.3f} ms")


def main() -> None:
    torch.set_num_threads(2)
    shapes = [
        ("gru 256, batch 32 x 12 steps", nn.GRU, 256, 256, 32, 12),
        ("lstm 512, batch 32 x 64 steps", nn.LSTM, 512, 512, 32, 64),
    ]
    for name, cls, inp, hidden, batch, steps in shapes:
        rnn = cls(inp, hidden, batch_first=True)
        x = torch.randn(batch, steps, inp)
        with torch.no_grad():
            timed(f"{name} forward", 20, lambda: rnn(x))

        def step():
            xx = x.clone().requires_grad_(True)
            out, _ = rnn(xx)
            out.sum().backward()

        timed(f"{name} forward+backward", 10, step)


if __name__ == "__main__":
    main()
