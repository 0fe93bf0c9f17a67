"""Seeds for the `audio` and `ct2` fuzz targets (stdlib only): python3 fuzz/make_speech_seeds.py

audio: small WAVs of every layout the reader takes (unsigned 8-bit, signed 16/24/32-bit, float 32/64,
mu-law, WAVE_FORMAT_EXTENSIBLE, stereo, 8/22.05/44.1 kHz), a LIST chunk, a streamed (0xFFFFFFFF) size,
a truncated one, and a headerless s16le body. ct2: model.bin files of binary versions 1, 3 and 6 with
scalars, float16/float32/int8 variables and an alias, as CTranslate2's ModelSpec._serialize writes them.
"""
import math, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))


def wav(fmt_tag, channels, rate, bits, frames, extensible=False, extra=b"", size=None):
    block = channels * bits // 8
    body = bytearray()
    for i in range(frames * channels):
        x = math.sin(i * 0.3)
        if fmt_tag == 3:
            body += struct.pack("<f" if bits == 32 else "<d", x * 0.5)
        elif fmt_tag == 7:
            body += bytes([(i * 37) & 0xFF])
        elif bits == 8:
            body += bytes([int(128 + 100 * x)])
        else:
            body += int(x * (1 << (bits - 2))).to_bytes(bits // 8, "little", signed=True)
    tag = 0xFFFE if extensible else fmt_tag
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if fmt_tag != 1 and not extensible:
        fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry it
    if extensible:
        guid = struct.pack("<H", fmt_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 3 if channels == 2 else 4) + guid
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    chunks += b"data" + struct.pack("<I", len(body) if size is None else size) + bytes(body)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) if size is None else size) + b"WAVE" + chunks


def ct2(version, variables, aliases=()):
    def string(s):
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"
    out = struct.pack("<I", version)
    if version >= 2:
        out += string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, shape, dtype, data in variables:
        out += string(name) + struct.pack("<B", len(shape)) + b"".join(struct.pack("<I", d) for d in shape)
        if version >= 4:
            out += struct.pack("<BI", dtype, len(data))
        else:
            size = {0: 4, 1: 1, 2: 2}[dtype]
            out += struct.pack("<BI", size, len(data) // size)
        out += data
    if version >= 3:
        out += struct.pack("<I", len(aliases)) + b"".join(string(a) + string(t) for a, t in aliases)
    return out


def main():
    audio = os.path.join(HERE, "corpus", "audio")
    os.makedirs(audio, exist_ok=True)
    seeds = {
        "u8_mono_8k.wav": wav(1, 1, 8000, 8, 40),
        "s16_mono_16k.wav": wav(1, 1, 16000, 16, 40),
        "s16_stereo_44k.wav": wav(1, 2, 44100, 16, 40),
        "s24_mono_22k.wav": wav(1, 1, 22050, 24, 40),
        "s32_stereo_48k.wav": wav(1, 2, 48000, 32, 30),
        "f32_mono_16k.wav": wav(3, 1, 16000, 32, 40),
        "f64_mono_8k.wav": wav(3, 1, 8000, 64, 20),
        "mulaw_mono_8k.wav": wav(7, 1, 8000, 8, 40),
        "extensible_s16_stereo.wav": wav(1, 2, 16000, 16, 30, extensible=True),
        "list_chunk.wav": wav(1, 1, 16000, 16, 20, extra=b"LIST\x0c\x00\x00\x00INFOISFT\x00\x00\x00\x00"),
        "streamed.wav": wav(1, 1, 16000, 16, 20, size=0xFFFFFFFF),
        "truncated.wav": wav(1, 1, 16000, 16, 40)[:60],
        "body.raw": bytes(wav(1, 1, 16000, 16, 40)[44:]),
    }
    f16 = lambda xs: b"".join(struct.pack("<e", x) for x in xs)
    f32 = lambda xs: b"".join(struct.pack("<f", x) for x in xs)
    variables = [
        ("decoder/embeddings/weight", [3, 2], 4, f16([0.5, -1, 2, 0.25, 1, -0.5])),
        ("decoder/num_heads", [], 2, struct.pack("<h", 6)),
        ("encoder/conv1/bias", [2], 0, f32([1.5, -2])),
        ("encoder/q", [4], 1, bytes([1, 255, 128, 7])),
    ]
    seeds_ct2 = {
        "v6_alias.bin": ct2(6, variables, [("decoder/projection/weight", "decoder/embeddings/weight")]),
        "v3_int16.bin": ct2(3, [v for v in variables if v[2] != 4]),
        "v1.bin": ct2(1, [v for v in variables if v[2] == 0]),
    }
    for name, data in seeds.items():
        open(os.path.join(audio, name), "wb").write(data)
    model = os.path.join(HERE, "corpus", "ct2")
    os.makedirs(model, exist_ok=True)
    for name, data in seeds_ct2.items():
        open(os.path.join(model, name), "wb").write(data)
    print(f"wrote {len(seeds)} audio and {len(seeds_ct2)} ct2 seeds")


if __name__ == "__main__":
    main()
