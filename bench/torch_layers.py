#!/usr/bin/env python3
"""PyTorch twin of bench/layers.rs: per-layer times of the seed CNN's train step (batch 64,
2 threads), same layers, same shapes, same names."""
import time

import torch
import torch.nn as nn


def timed(name: str, f) -> None:
    for _ in range(5):
        f()
    started = time.perf_counter()
    for _ in range(50):
        f()
    print(f"{name:34} {(time.perf_counter() - started) * 1e3 / 50:8.3f} ms")


def main() -> None:
    torch.set_num_threads(2)
    c1, c2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
    pool, fc = nn.MaxPool2d(2), nn.Linear(3136, 128)
    x1, x2, x3 = torch.randn(64, 1, 28, 28), torch.randn(64, 32, 14, 14), torch.randn(64, 32, 28, 28)
    with torch.no_grad():
        timed("conv1 forward", lambda: c1(x1))
        timed("conv2 forward", lambda: c2(x2))
        timed("max-pool forward (64x32x28x28)", lambda: pool(x3))
        timed("relu forward (64x32x28x28)", lambda: torch.relu(x3))

    def backward(layer, x, input_grad=True):
        def step():
            xx = x.clone().requires_grad_(input_grad)
            layer(xx).sum().backward()
        return step

    timed("conv1 forward+backward (weights)", backward(c1, x1, input_grad=False))
    timed("conv2 forward+backward", backward(c2, x2))
    timed("max-pool forward+backward", backward(pool, x3))
    timed("relu forward+backward", backward(torch.relu, x3))
    timed("(tracked input + sum + backward)", backward(lambda x: x, x3))
    timed("fc1 forward+backward", backward(fc, torch.randn(64, 3136)))


if __name__ == "__main__":
    main()
