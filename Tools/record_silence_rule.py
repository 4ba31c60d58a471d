#!/usr/bin/env python3
"""Records the prediction silence rule in a model file written before the library recorded it.

Model files from EnvNet for Swift 0.5 lack `silenceThresholdDecibels` in their `envnet.model`
metadata; the library then applies the default (-50 dBFS). This rewrites the safetensors header
with the field set (the tensors are copied byte for byte), so that the file states its rule. It
was run once, on the bundled model, whose training run started before 0.6:

    python3 Tools/record_silence_rule.py runs/esc10-h1536-all/model.safetensors -50 out.safetensors

The output is written to a temporary file and renamed, so a failure leaves no half file.
"""
import json
import os
import struct
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: record_silence_rule.py <model.safetensors> <dBFS> <output.safetensors>")
    source, decibels, output = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    if not (-200 <= decibels <= 0):
        sys.exit(f"the threshold must be a level in dBFS between -200 and 0, got {decibels}")
    with open(source, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
        body = file.read()
    metadata = header.get("__metadata__", {})
    if "envnet.model" not in metadata:
        sys.exit(f"{source}: no envnet.model metadata (not a model file of this library)")
    description = json.loads(metadata["envnet.model"])
    description["silenceThresholdDecibels"] = decibels
    metadata["envnet.model"] = json.dumps(description, sort_keys=True, separators=(",", ":"))
    header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the tensor data 8-byte aligned
    temporary = output + ".partial"
    with open(temporary, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        file.write(body)
    os.replace(temporary, output)
    print(f"{output}: silenceThresholdDecibels = {decibels}")


if __name__ == "__main__":
    main()
