#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (small valid inputs) into Fuzz/Corpus/.

Usage: python3 Fuzz/make_corpus.py   (standard library only; output is deterministic)
  wav/          one small file of every supported encoding, plain and WAVE_FORMAT_EXTENSIBLE,
                mono and multichannel, odd-sized chunks, data before fmt, a truncated data chunk
  csv/          ESC-50 metadata excerpts (esc50 and esc10 rows, quoting, CRLF, BOM)
  safetensors/  a few tensors of every data type, metadata, an empty file, and a narrowed EnvNet
                (2 classes, fc width 2) that EnvNet.load accepts
"""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "Corpus")
rng = random.Random(8)


def write(kind, name, data):
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    with open(os.path.join(OUT, kind, name), "wb") as f:
        f.write(data)


# ---- WAV ----
GUID_TAIL = bytes([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])


def chunk(ident, body):
    return ident + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def wav(tag, channels, bits, frames, rate=16000, extensible=False, extras=(), data_first=False,
        declared_data=None):
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align, align, bits)
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + GUID_TAIL
    payload = bytes(rng.randrange(256) for _ in range(frames * align))
    data = chunk(b"data", payload)
    if declared_data is not None:
        data = b"data" + struct.pack("<I", declared_data) + payload
    parts = [chunk(b"fmt ", fmt)] + [chunk(i, b) for i, b in extras]
    parts = [data] + parts if data_first else parts + [data]
    body = b"WAVE" + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body


formats = [(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64), (6, 8), (7, 8)]
for tag, bits in formats:
    for channels in (1, 2):
        write("wav", f"tag{tag}-{bits}bit-{channels}ch.wav", wav(tag, channels, bits, 7 + channels))
    write("wav", f"tag{tag}-{bits}bit-extensible.wav", wav(tag, 3, bits, 5, extensible=True))
write("wav", "list-junk-data-first.wav",
      wav(1, 1, 16, 9, rate=44100, extras=[(b"LIST", b"INFOISFT\x05\0\0\0swift\0"), (b"junk", b"abc")], data_first=True))
write("wav", "truncated-data.wav", wav(1, 2, 16, 6, declared_data=1000))
write("wav", "riff-size-zero.wav", b"RIFF\0\0\0\0" + wav(1, 1, 16, 4)[8:])

# ---- CSV ----
HEADER = "filename,fold,target,category,esc10,src_file,take"
write("csv", "esc50.csv", ("\n".join([
    HEADER,
    "1-100032-A-0.wav,1,0,dog,True,100032,A",
    "1-100038-A-14.wav,1,14,chirping_birds,False,100038,A",
    "2-104863-A-11.wav,2,11,sea_waves,True,104863,A",
    "5-9032-A-0.wav,5,0,dog,True,9032,A",
]) + "\n").encode())
write("csv", "esc10-crlf-bom.csv", ("\ufeff" + "\r\n".join([
    HEADER,
    "1-1.wav,1,10,rain,true,1,A",
    "1-2.wav,2,41,clock_tick,1,2,B",
    "1-3.wav,3,12,crackling_fire,TRUE,3,C",
])).encode())
write("csv", "quoted.csv", (HEADER + "\n"
      + '"a,b.wav",1,3,"cow, ""moo""",False,"multi\nline",A\r'
      + 'c.wav,4,3,"cow, ""moo""",0,x,B\n\n').encode())
write("csv", "plain.csv", b"a,b,c\n1,2,3\r4,\"5\",6\n")

# ---- safetensors ----
PACK = {"F32": "<f", "F64": "<d", "I32": "<i", "I64": "<q", "F16": "<e"}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, values)."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, values in tensors:
        if dtype == "BF16":
            blob = b"".join(struct.pack("<f", v)[2:] for v in values)
        else:
            blob = b"".join(struct.pack(PACK[dtype], v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def values(n, integer=False):
    return [rng.randrange(-100, 100) if integer else rng.uniform(-2, 2) for _ in range(n)]


write("safetensors", "two-f32.safetensors",
      safetensors([("a", "F32", [2, 3], values(6)), ("b.weight", "F32", [4], values(4))], {"format": "pt"}))
write("safetensors", "all-dtypes.safetensors", safetensors([
    ("f64", "F64", [3], values(3)), ("f16", "F16", [2, 2], values(4)), ("bf16", "BF16", [3], values(3)),
    ("i32", "I32", [2], values(2, True)), ("i64", "I64", [1, 2], values(2, True)),
    ("scalar", "F32", [], values(1)), ("empty", "F32", [0, 5], [])]))
write("safetensors", "metadata-only.safetensors", safetensors([], {"envnet.class_names": '["a","b"]'}))
write("safetensors", "empty-header.safetensors", struct.pack("<Q", 2) + b"{}")

# A narrowed EnvNet (official front end, 2 classes, fc width 2) with the interchange names.
HIDDEN, CLASSES = 2, 2
shapes = [("conv1.weight", [40, 1, 1, 8])] + [(f"bn1.{k}", [40]) for k in ("weight", "bias", "running_mean", "running_var")]
shapes += [("conv2.weight", [40, 40, 1, 8])] + [(f"bn2.{k}", [40]) for k in ("weight", "bias", "running_mean", "running_var")]
shapes += [("conv3.weight", [50, 1, 8, 13])] + [(f"bn3.{k}", [50]) for k in ("weight", "bias", "running_mean", "running_var")]
shapes += [("conv4.weight", [50, 50, 1, 5])] + [(f"bn4.{k}", [50]) for k in ("weight", "bias", "running_mean", "running_var")]
shapes += [("fc5.weight", [HIDDEN, 7700]), ("fc5.bias", [HIDDEN]), ("fc6.weight", [HIDDEN, HIDDEN]), ("fc6.bias", [HIDDEN]),
           ("fc7.weight", [CLASSES, HIDDEN]), ("fc7.bias", [CLASSES])]


def count(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def envnet(dtype, with_metadata):
    tensors = []
    for name, shape in shapes:
        v = [abs(x) + 0.5 for x in values(count(shape))] if name.endswith("running_var") else values(count(shape))
        tensors.append((name, dtype, shape, v))
    metadata = {"format": "pt"}
    if with_metadata:
        metadata["envnet.configuration"] = json.dumps(
            {"variant": "official", "classCount": CLASSES, "hiddenUnits": HIDDEN, "dropoutProbability": 0.5})
        metadata["envnet.class_names"] = json.dumps(["dog", "rain"])
    return safetensors(tensors, metadata)


write("safetensors", "envnet-2x2-f16.safetensors", envnet("F16", True))
write("safetensors", "envnet-2x2-bf16-inferred.safetensors", envnet("BF16", False))
