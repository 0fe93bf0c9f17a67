#!/usr/bin/env python3
"""PyTorch reference times of depthwise convolutions (groups = channels, bias-free) in the shapes
of EfficientNet-Lite0's 16 MBConv blocks, at 224x224 and 96x96 input, batch 32, 2 threads.

    /opt/torch-venv/bin/python bench/torch_depthwise.py [--batch 32] [--res 224 96] [--min-time 0.5]

Forward is timed under torch.no_grad(); forward+backward computes the gradients of both the
input and the weight (sum of the output as the loss, as in bench/torch_layers.py). Padding is
k//2 on all sides: for the even sizes here this gives the same output size as the model's
TF-"SAME" padding (which pads stride-2 convolutions asymmetrically: 0/1 for k=3, 1/2 for k=5),
and the same work. Each row is the mean over as many runs as fit in --min-time (at least 3),
after 2 warm-up runs. "blocks" lists the Lite0 block indices that have that shape.
"""
import argparse, time

import torch
import torch.nn.functional as F

# (channels, kernel, stride, input size at 224) of EfficientNet-Lite0's depthwise convolutions,
# blocks 0..15 (input size at 224; scales with the input resolution).
LITE0_DEPTHWISE = [
    (32, 3, 1, 112), (96, 3, 2, 112), (144, 3, 1, 56), (144, 5, 2, 56), (240, 5, 1, 28),
    (240, 3, 2, 28), (480, 3, 1, 14), (480, 3, 1, 14), (480, 5, 1, 14), (672, 5, 1, 14),
    (672, 5, 1, 14), (672, 5, 2, 14), (1152, 5, 1, 7), (1152, 5, 1, 7), (1152, 5, 1, 7),
    (1152, 3, 1, 7),
]


def timed(f, min_time):
    for _ in range(2):
        f()
    runs, started = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < min_time:
        f()
        runs += 1
    return (time.perf_counter() - started) * 1e3 / runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--res", type=int, nargs="+", default=[224, 96])
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, float32, NCHW")
    header = f"{'res':>4} {'C':>5} {'k':>2} {'s':>2} {'in HxW':>8} {'out HxW':>8} {'fwd ms':>9} {'fwd+bwd ms':>11}  blocks"
    for res in args.res:
        print(header)
        shapes = {}
        for block, (c, k, s, size224) in enumerate(LITE0_DEPTHWISE):
            size = size224 * res // 224
            shapes.setdefault((c, k, s, size), []).append(block)
        total_f = total_b = 0.0
        for (c, k, s, size), blocks in shapes.items():
            x = torch.randn(args.batch, c, size, size)
            w = torch.randn(c, 1, k, k) * 0.1

            def fwd():
                with torch.no_grad():
                    return F.conv2d(x, w, stride=s, padding=k // 2, groups=c)

            def fwd_bwd():
                xx = x.clone().requires_grad_(True)
                ww = w.clone().requires_grad_(True)
                F.conv2d(xx, ww, stride=s, padding=k // 2, groups=c).sum().backward()

            out = fwd().shape[-1]
            tf, tb = timed(fwd, args.min_time), timed(fwd_bwd, args.min_time)
            total_f += tf * len(blocks)
            total_b += tb * len(blocks)
            print(f"{res:>4} {c:>5} {k:>2} {s:>2} {f'{size}x{size}':>8} {f'{out}x{out}':>8} {tf:>9.2f} {tb:>11.2f}  "
                  + ",".join(map(str, blocks)))
        print(f"{res:>4} {'all 16 depthwise convs of one Lite0 pass':>38} {total_f:>9.2f} {total_b:>11.2f}\n")


if __name__ == "__main__":
    main()
