"""Whisper tiny.en as Hugging Face transformers runs it, for bench/whisper.sh (and pretune's HF loader).

    /opt/torch-venv/bin/python bench/whisper_hf.py convert models/whisper-tiny.en models/whisper-tiny.en-hf
    /opt/torch-venv/bin/python bench/whisper_hf.py time models/whisper-tiny.en-hf FILE...

`convert` writes a WhisperForConditionalGeneration directory (config.json, model.safetensors,
generation_config.json, tokenizer.json) from CTranslate2's model.bin: the inverse of CTranslate2's
WhisperLoader (fused Q/K/V and K/V split, the key projections without bias), float16 -> float32.
`time` transcribes each file with transformers on PyTorch (2 threads): WhisperFeatureExtractor (30 s
padded, OpenAI's front end), then greedy `generate` from <|startoftranscript|><|notimestamps|> with
config.json's suppressed tokens, as faster-whisper decodes; prints one JSON line per file.
"""
import json, os, shutil, struct, sys, time, wave

import numpy as np


def read_ct2(path):
    """model.bin -> {name: array} (aliases resolved), as /work/notes/whisper.md describes the format."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return v

    def string():
        nonlocal pos
        n = take("H")
        s = data[pos:pos + n - 1].decode()
        pos += n
        return s

    version = take("I")
    assert version >= 4, "binary version >= 4 expected"
    string(), take("I")
    types = [np.float32, np.int8, np.int16, np.int32, np.float16]
    out = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = types[take("B")]
        nbytes = take("I")
        out[name] = np.frombuffer(data, dtype, nbytes // np.dtype(dtype).itemsize, pos).reshape(shape)
        pos += nbytes
    for _ in range(take("I")):
        alias, target = string(), string()
        out[alias] = out[target]
    return out


def convert(src, dst):
    import torch
    from safetensors.torch import save_file
    v = {k: np.asarray(a, np.float32) for k, a in read_ct2(os.path.join(src, "model.bin")).items()}
    d = v["decoder/embeddings/weight"].shape[1]
    layers = lambda p: sum(1 for k in v if k.startswith(p + "/layer_") and k.endswith("/ffn/linear_0/weight"))
    n_enc, n_dec = layers("encoder"), layers("decoder")
    out = {}

    def put(name, array):
        out["model." + name] = torch.from_numpy(np.ascontiguousarray(array))

    def linear(ours, theirs, bias=True):
        put(ours + ".weight", v[theirs + "/weight"])
        if bias:
            put(ours + ".bias", v[theirs + "/bias"])

    def norm(ours, theirs):
        put(ours + ".weight", v[theirs + "/gamma"])
        put(ours + ".bias", v[theirs + "/beta"])

    def fused(ours, theirs, names):
        w, b = v[theirs + "/weight"], v[theirs + "/bias"]
        for i, n in enumerate(names):
            put(f"{ours}.{n}.weight", w[i * d:(i + 1) * d])
            if n != "k_proj":
                put(f"{ours}.{n}.bias", b[i * d:(i + 1) * d])

    for c in ("conv1", "conv2"):
        linear("encoder." + c, "encoder/" + c)
    put("encoder.embed_positions.weight", v["encoder/position_encodings/encodings"])
    for i in range(n_enc):
        o, t = f"encoder.layers.{i}", f"encoder/layer_{i}"
        fused(o + ".self_attn", t + "/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
        linear(o + ".self_attn.out_proj", t + "/self_attention/linear_1")
        norm(o + ".self_attn_layer_norm", t + "/self_attention/layer_norm")
        linear(o + ".fc1", t + "/ffn/linear_0")
        linear(o + ".fc2", t + "/ffn/linear_1")
        norm(o + ".final_layer_norm", t + "/ffn/layer_norm")
    norm("encoder.layer_norm", "encoder/layer_norm")
    put("decoder.embed_tokens.weight", v["decoder/embeddings/weight"])
    put("decoder.embed_positions.weight", v["decoder/position_encodings/encodings"])
    for i in range(n_dec):
        o, t = f"decoder.layers.{i}", f"decoder/layer_{i}"
        fused(o + ".self_attn", t + "/self_attention/linear_0", ["q_proj", "k_proj", "v_proj"])
        linear(o + ".self_attn.out_proj", t + "/self_attention/linear_1")
        norm(o + ".self_attn_layer_norm", t + "/self_attention/layer_norm")
        linear(o + ".encoder_attn.q_proj", t + "/attention/linear_0")
        fused(o + ".encoder_attn", t + "/attention/linear_1", ["k_proj", "v_proj"])
        linear(o + ".encoder_attn.out_proj", t + "/attention/linear_2")
        norm(o + ".encoder_attn_layer_norm", t + "/attention/layer_norm")
        linear(o + ".fc1", t + "/ffn/linear_0")
        linear(o + ".fc2", t + "/ffn/linear_1")
        norm(o + ".final_layer_norm", t + "/ffn/layer_norm")
    norm("decoder.layer_norm", "decoder/layer_norm")
    ffn = v["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    settings = json.load(open(os.path.join(src, "config.json")))
    config = {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "vocab_size": v["decoder/embeddings/weight"].shape[0], "num_mel_bins": v["encoder/conv1/weight"].shape[1],
        "d_model": d, "encoder_layers": n_enc, "decoder_layers": n_dec,
        "encoder_attention_heads": int(v["encoder/num_heads"]), "decoder_attention_heads": int(v["decoder/num_heads"]),
        "encoder_ffn_dim": ffn, "decoder_ffn_dim": ffn,
        "max_source_positions": v["encoder/position_encodings/encodings"].shape[0],
        "max_target_positions": v["decoder/position_encodings/encodings"].shape[0],
        "activation_function": "gelu", "scale_embedding": False, "tie_word_embeddings": True,
        "decoder_start_token_id": 50257, "eos_token_id": 50256, "bos_token_id": 50257, "pad_token_id": 50256,
        "suppress_tokens": settings["suppress_ids"], "begin_suppress_tokens": settings["suppress_ids_begin"],
    }
    os.makedirs(dst, exist_ok=True)
    json.dump(config, open(os.path.join(dst, "config.json"), "w"), indent=1)
    json.dump({"decoder_start_token_id": 50257, "eos_token_id": 50256, "no_timestamps_token_id": 50362,
               "suppress_tokens": settings["suppress_ids"], "begin_suppress_tokens": settings["suppress_ids_begin"],
               "max_length": 448}, open(os.path.join(dst, "generation_config.json"), "w"), indent=1)
    shutil.copy(os.path.join(src, "tokenizer.json"), dst)
    save_file(out, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    print(f"wrote {dst}: {len(out)} tensors")


def read_audio(path):
    if path.endswith(".wav"):
        with wave.open(path) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1
            raw = w.readframes(w.getnframes())
    else:
        raw = open(path, "rb").read()
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def timing(model_dir, files):
    import torch
    import transformers
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    model = WhisperForConditionalGeneration.from_pretrained(model_dir).eval()
    config = json.load(open(os.path.join(model_dir, "config.json")))
    extractor = WhisperFeatureExtractor(feature_size=config["num_mel_bins"])
    prompt = torch.tensor([[50257, 50362]])

    transformers.logging.set_verbosity_error()  # its notes on max_length and max_new_tokens
    # generation_config.json (written by `convert`) holds the suppressed tokens.

    def run(audio):
        features = extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.inference_mode():
            out = model.generate(features, decoder_input_ids=prompt, max_new_tokens=224,
                                 num_beams=1, do_sample=False)[0].tolist()
        # transformers 5 returns the new tokens alone (older versions: the prompt too).
        out = out[2:] if out[:2] == [50257, 50362] else out
        return [t for t in out if t != 50256]

    run(read_audio(files[0]))  # warm-up
    for f in files:
        audio = read_audio(f)
        started = time.perf_counter()
        tokens = run(audio)
        seconds = time.perf_counter() - started
        print(json.dumps({"framework": f"transformers {transformers.__version__} "
                          f"(PyTorch {torch.__version__.split('+')[0]}, float32)", "file": f,
                          "audio_seconds": len(audio) / 16000, "seconds": seconds, "tokens": tokens}))


if __name__ == "__main__":
    {"convert": lambda: convert(sys.argv[2], sys.argv[3]), "time": lambda: timing(sys.argv[2], sys.argv[3:])}[sys.argv[1]]()
