#!/usr/bin/env python3
"""Write the hand-made seeds of fuzz/corpus/{idx,pickle_scan,read_tensors} (the files with
descriptive names; the hex-named ones were found by libFuzzer). The idx seeds need only the
standard library; the others need torch and safetensors, e.g. /opt/torch-venv/bin/python.
The meta_parse seeds are pretune.json files written by `pretune pretrain/finetune/import`.

    python3 fuzz/make_seeds.py [OUT_DIR]     # default: fuzz/corpus
"""
import collections, gzip, io, os, pickle, struct, sys, zipfile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


# IDX: raw and gzip, rank 1 and 3, and the usual ways to be wrong.
def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


z = gzip.compress(idx([5, 28, 28], [0] * 3920))
for name, data in {
    "labels3.idx1": idx([3], [1, 2, 3]),
    "labels0.idx1": idx([0], []),
    "images_2x3x4.idx3": idx([2, 3, 4], range(24)),
    "images_1x1x1.idx3": idx([1, 1, 1], [255]),
    "images_0x28x28.idx3": idx([0, 28, 28], []),
    "truncated.idx3": idx([2, 2, 2], [1, 2, 3]),
    "trailing.idx1": idx([2], [0, 1, 9]),
    "huge_claim.idx3": idx([0xFFFFFFFF, 4096, 4096], []),
    "wrong_type.idx1": bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + b"\0\0\0\0",
    "labels3.idx1.gz": gzip.compress(idx([3], [1, 2, 3])),
    "images_2x3x4.idx3.gz": gzip.compress(idx([2, 3, 4], range(24))),
    "images_4x7x7.idx3.gz": gzip.compress(idx([4, 7, 7], [i % 7 for i in range(196)])),
    "gzip_two_members.idx1.gz": gzip.compress(idx([2], [5, 6])) + gzip.compress(b"\x07"),
    "gzip_truncated.idx3.gz": z[: len(z) // 2],
}.items():
    put("idx", name, data)

try:
    import torch
    from safetensors.torch import save as st_save
except ImportError:
    sys.exit("idx seeds written; the others need torch and safetensors")

torch.manual_seed(0)


def sd(dtype=torch.float32):
    return collections.OrderedDict(
        [
            ("conv1.weight", torch.randn(2, 1, 2, 2).to(dtype)),
            ("conv1.bias", torch.randn(2).to(dtype)),
            ("bn1.running_mean", torch.zeros(2).to(dtype)),
            ("bn1.num_batches_tracked", torch.tensor(3)),
            ("fc.weight", torch.randn(3, 2).to(dtype)),
        ]
    )


R, P = "read_tensors", "pickle_scan"
put(R, "st_f32.safetensors", st_save(dict(sd())))
put(R, "st_f16.safetensors", st_save(dict(sd(torch.float16)), metadata={"format": "pt"}))
put(R, "st_bf16.safetensors", st_save(dict(sd(torch.bfloat16))))
put(R, "st_f64_empty.safetensors", st_save({"w": torch.randn(2, 2, dtype=torch.float64), "e": torch.zeros(0, 3)}))
put(R, "st_int_only.safetensors", st_save({"n": torch.arange(4)}))
put(R, "st_wrapped.safetensors", st_save({"state_dict.fc.weight": torch.randn(2, 2), "optimizer.step": torch.tensor([1.0])}))
put(R, "st_scalar.safetensors", st_save({"s": torch.tensor(1.5)}))


def ts(obj, legacy=False, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy, **kw)
    return buf.getvalue()


torch_files = {
    "zip_f32.pt": ts(sd()),
    "zip_f16.pt": ts(sd(torch.float16)),
    "zip_wrapped.pt": ts({"state_dict": sd(), "epoch": 3}),
    "zip_model_state_dict.pt": ts({"model_state_dict": sd(torch.bfloat16)}),
    "zip_views.pt": ts({"a": torch.randn(4)[1:3], "b": torch.randn(3, 2).t()}),
    "zip_param.pt": ts(torch.nn.Parameter(torch.randn(2))),
    "legacy_f32.pt": ts(sd(), legacy=True),
    "legacy_f64.pt": ts(sd(torch.float64), legacy=True),
    "legacy_p4.pt": ts(sd(), legacy=True, pickle_protocol=4),
}


# Refused: pickles that call os.system, raw and as a zip's data.pkl.
class Evil:
    def __reduce__(self):
        return (os.system, ("echo hi",))


for proto in (0, 2, 4):
    put(P, f"evil_p{proto}.pkl", pickle.dumps(Evil(), protocol=proto))
    if proto:
        put(R, f"evil_p{proto}.pkl", pickle.dumps(Evil(), protocol=proto))
zin = zipfile.ZipFile(io.BytesIO(ts({"x": torch.zeros(1)})))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("data.pkl"):
            data = pickle.dumps(Evil(), protocol=2)
        zout.writestr(item, data)
torch_files["zip_evil.pt"] = buf.getvalue()

for name, data in torch_files.items():
    put(R, name, data)
    if name.startswith("zip_"):
        z = zipfile.ZipFile(io.BytesIO(data))
        for n in z.namelist():
            if n.endswith(".pkl"):
                put(P, f"{name[:-3]}_data.pkl", z.read(n))
    else:
        put(P, f"{name[:-3]}.pkl", data[:4096])
od = collections.OrderedDict([("a", 1), ("b", [1.5, None, True]), ("c", (b"xy", "zzz")), ("d", {1, 2}), ("e", 2**70)])
for proto in range(6):
    put(P, f"plain_p{proto}.pkl", pickle.dumps(od, protocol=proto))
