#!/usr/bin/env python3
"""Converts EnvNet safetensors (written by `EnvNet.save`, `envnet train` or
Tools/pytorch_to_safetensors.py) to a PyTorch state_dict (.pt).

Usage:
  python3 Tools/safetensors_to_pytorch.py model.safetensors model.pt \\
      [--layout interchange|seed] [--conv-rank auto|3|4] [--metadata-out model.json]

--layout      names in the state_dict: "interchange" (conv1.weight, bn1.running_mean, fc5.weight ...,
              the default) or "seed" (the seed article's nn.Sequential blocks: conv1.0.weight,
              conv1.1.running_mean, fc5.0.weight ...); Tools/pytorch_to_safetensors.py documents both.
--conv-rank   the rank of conv1/conv2 weights: 3 for nn.Conv1d ([40, C, 8]), 4 for nn.Conv2d
              ([40, C, 1, 8]); "auto" (default) gives 3 for the seed variant (whose PyTorch model
              uses Conv1d) and 4 for the official one.
--metadata-out  also writes the configuration and class names as JSON
              ({"configuration": {...}, "class_names": [...]}); they are printed either way.

Every BatchNorm gets a `num_batches_tracked` counter (int64 zero), as PyTorch's state_dict has,
so `model.load_state_dict(torch.load("model.pt"))` works with strict=True. Tensors are float32.
Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import argparse
import json
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_to_safetensors import (  # noqa: E402
    LAYOUTS, InteropError, check_tensors, dependencies_installed, from_interchange_name, infer_configuration, interchange_keys,
)


def read_safetensors(path):
    """(interchange tensors with 4-D conv1/conv2 weights, configuration, class names)."""
    import torch
    from safetensors import safe_open

    tensors = {}
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except Exception as error:
        raise InteropError(f"{path}: cannot read safetensors: {error}".splitlines()[0])
    for key, value in list(tensors.items()):
        if key.endswith(".num_batches_tracked"):
            del tensors[key]
            continue
        if not value.is_floating_point():
            raise InteropError(f"{path}: tensor '{key}' has dtype {value.dtype}, expected a floating-point type")
        value = value.to(torch.float32).contiguous()
        if key in ("conv1.weight", "conv2.weight") and value.dim() == 3:
            value = value.unsqueeze(2).contiguous()
        tensors[key] = value
    if "envnet.configuration" in metadata:
        try:
            configuration = json.loads(metadata["envnet.configuration"])
            configuration = {"variant": str(configuration["variant"]), "classCount": int(configuration["classCount"]),
                             "hiddenUnits": int(configuration["hiddenUnits"]),
                             "dropoutProbability": float(configuration.get("dropoutProbability", 0.5))}
        except (ValueError, KeyError, TypeError):
            raise InteropError(f"{path}: metadata envnet.configuration is not a valid configuration")
        if configuration["variant"] not in ("official", "seed"):
            raise InteropError(f"{path}: unknown variant {configuration['variant']!r} in envnet.configuration")
    else:
        configuration = infer_configuration(tensors, path)
    check_tensors(tensors, configuration, path)
    class_names = [f"class {i}" for i in range(configuration["classCount"])]
    if "envnet.class_names" in metadata:
        try:
            class_names = json.loads(metadata["envnet.class_names"])
        except ValueError:
            class_names = None
        if not isinstance(class_names, list) or len(class_names) != configuration["classCount"]:
            raise InteropError(f"{path}: metadata envnet.class_names does not list {configuration['classCount']} class names")
    return tensors, configuration, class_names


def interchange_to_state_dict(tensors, configuration, layout="interchange", conv_rank="auto"):
    """An OrderedDict in the PyTorch module's order, with num_batches_tracked counters."""
    import torch

    if conv_rank == "auto":
        conv_rank = 3 if configuration["variant"] == "seed" else 4
    conv_rank = int(conv_rank)
    state = OrderedDict()
    for key in interchange_keys(configuration["variant"]):
        value = tensors[key]
        if key in ("conv1.weight", "conv2.weight") and conv_rank == 3:
            value = value.squeeze(2).contiguous()
        state[from_interchange_name(key, layout)] = value
        if key.startswith("bn") and key.endswith(".running_var"):
            counter = key[: -len("running_var")] + "num_batches_tracked"
            state[from_interchange_name(counter, layout)] = torch.zeros((), dtype=torch.int64)
    return state


def convert(input_path, output_path, layout="interchange", conv_rank="auto", metadata_out=None):
    """safetensors -> .pt. Returns (configuration, class names)."""
    import torch

    tensors, configuration, class_names = read_safetensors(input_path)
    state = interchange_to_state_dict(tensors, configuration, layout, conv_rank)
    torch.save(state, output_path)
    if metadata_out:
        with open(metadata_out, "w", encoding="utf-8") as f:
            json.dump({"configuration": configuration, "class_names": class_names}, f, indent=2, ensure_ascii=False)
            f.write("\n")
    return configuration, class_names


def main(argv=None):
    parser = argparse.ArgumentParser(description="EnvNet safetensors -> PyTorch state_dict (.pt)")
    parser.add_argument("input", help="an EnvNet safetensors file")
    parser.add_argument("output", help="the .pt file to write (torch.save of a state_dict)")
    parser.add_argument("--layout", choices=LAYOUTS, default="interchange", help="naming of the state_dict (default: interchange)")
    parser.add_argument("--conv-rank", choices=("auto", "3", "4"), default="auto",
                        help="conv1/conv2 weights as Conv1d (3) or Conv2d (4) tensors; auto: 3 for the seed variant, 4 for official")
    parser.add_argument("--metadata-out", help="write {configuration, class_names} as JSON to this file")
    args = parser.parse_args(argv)
    if not dependencies_installed():
        return 1
    try:
        configuration, class_names = convert(args.input, args.output, args.layout, args.conv_rank, args.metadata_out)
    except (InteropError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.input} -> {args.output} ({args.layout} layout): {json.dumps(configuration, separators=(',', ':'))}")
    print(f"class names: {json.dumps(class_names, ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
