#!/usr/bin/env python3
"""Converts a PyTorch EnvNet state_dict (.pt/.pth) to EnvNet safetensors.

Usage:
  python3 Tools/pytorch_to_safetensors.py model.pt model.safetensors \\
      [--layout auto|interchange|seed] [--class-names NAMES] [--dropout 0.5]

The output is what `EnvNet.save(to:classNames:)` writes and what `EnvNet.load(from:)` and
`SoundClassifier(contentsOf:)` read: float32 tensors under the interchange names (conv1/conv2
weights as [40, C, 1, 8]) and the metadata

  format               "pt"
  envnet.configuration {"variant":"official","classCount":50,"hiddenUnits":4096,"dropoutProbability":0.5}
  envnet.class_names   ["dog", "rooster", ...]

The variant is inferred from the weights (conv1/conv2 with a bias: "seed", else "official"),
the class count from fc7.weight, the hidden width from fc5.weight. `num_batches_tracked`
counters are dropped. Every key and shape is checked; an error names the tensor.

Two state_dict naming layouts are understood (see Docs/pytorch-interop.md):

interchange  the spec's names, one module per layer:
               conv1.weight [40,1,1,8] or [40,1,8] (Conv1d), conv1.bias [40] (seed variant only),
               bn1.weight|bias|running_mean|running_var [40], conv2.*, bn2.*, conv3.weight [50,1,8,13],
               bn3.* [50], conv4.weight [50,50,1,5], bn4.* [50], fc5.weight [H,7700], fc5.bias [H],
               fc6.weight [H,H], fc6.bias [H], fc7.weight [K,H], fc7.bias [K]

seed         the seed article's nn.Sequential blocks (EnvNet as a public PyTorch re-implementation
             writes it; we define the layout as the module below, since its exact source is not ours):

               conv1 = Sequential(Conv1d(1, 40, 8, padding=4), BatchNorm1d(40), ReLU())
               conv2 = Sequential(Conv1d(40, 40, 8, padding=4), BatchNorm1d(40), ReLU(), MaxPool1d(160))
               conv3 = Sequential(Conv2d(1, 50, (8, 13), bias=False), BatchNorm2d(50), ReLU(), MaxPool2d(3))
               conv4 = Sequential(Conv2d(50, 50, (1, 5), bias=False), BatchNorm2d(50), ReLU(), MaxPool2d((1, 3)))
               fc5   = Sequential(Linear(7700, H), ReLU(), Dropout(0.5))
               fc6   = Sequential(Linear(H, H), ReLU(), Dropout(0.5))
               fc7   = Linear(H, K)

             so that  conv1.0.* -> conv1.*   conv1.1.* -> bn1.*   conv2.0.* -> conv2.*   conv2.1.* -> bn2.*
                      conv3.0.* -> conv3.*   conv3.1.* -> bn3.*   conv4.0.* -> conv4.*   conv4.1.* -> bn4.*
                      fc5.0.* -> fc5.*       fc6.0.* -> fc6.*     fc7.* -> fc7.*

A checkpoint that wraps the state_dict ({"state_dict": ...}, {"model": ...},
{"model_state_dict": ...}) and keys prefixed by "module." (DataParallel) are accepted.
Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import argparse
import json
import os
import sys

FEATURES = 7700  # 50 x 11 x 14 after pool4
BATCHNORM_FIELDS = ("weight", "bias", "running_mean", "running_var")
BATCHNORM_WIDTHS = {"bn1": 40, "bn2": 40, "bn3": 50, "bn4": 50}

# seed-layout prefix -> interchange prefix, in module order.
SEED_PREFIXES = [
    ("conv1.0.", "conv1."), ("conv1.1.", "bn1."),
    ("conv2.0.", "conv2."), ("conv2.1.", "bn2."),
    ("conv3.0.", "conv3."), ("conv3.1.", "bn3."),
    ("conv4.0.", "conv4."), ("conv4.1.", "bn4."),
    ("fc5.0.", "fc5."), ("fc6.0.", "fc6."), ("fc7.", "fc7."),
]
LAYOUTS = ("interchange", "seed")


class InteropError(Exception):
    """A state_dict or safetensors file that is not an EnvNet; the message names the tensor."""


def interchange_keys(variant):
    """The interchange names of an EnvNet's tensors, in the order of the PyTorch module's state_dict."""
    keys = []
    for conv, bn in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv4", "bn4")):
        keys.append(f"{conv}.weight")
        if variant == "seed" and conv in ("conv1", "conv2"):
            keys.append(f"{conv}.bias")
        keys += [f"{bn}.{field}" for field in BATCHNORM_FIELDS]
    for fc in ("fc5", "fc6", "fc7"):
        keys += [f"{fc}.weight", f"{fc}.bias"]
    return keys


def expected_shapes(variant, class_count, hidden_units):
    """Interchange name -> shape (conv1/conv2 weights in the 4-D form)."""
    shapes = {
        "conv1.weight": (40, 1, 1, 8), "conv2.weight": (40, 40, 1, 8),
        "conv3.weight": (50, 1, 8, 13), "conv4.weight": (50, 50, 1, 5),
        "fc5.weight": (hidden_units, FEATURES), "fc5.bias": (hidden_units,),
        "fc6.weight": (hidden_units, hidden_units), "fc6.bias": (hidden_units,),
        "fc7.weight": (class_count, hidden_units), "fc7.bias": (class_count,),
    }
    if variant == "seed":
        shapes["conv1.bias"] = (40,)
        shapes["conv2.bias"] = (40,)
    for bn, width in BATCHNORM_WIDTHS.items():
        for field in BATCHNORM_FIELDS:
            shapes[f"{bn}.{field}"] = (width,)
    return shapes


def to_interchange_name(key, layout):
    """The interchange name of a state_dict key in `layout`, or None when the key is not an EnvNet tensor."""
    if layout == "interchange":
        return key
    for seed_prefix, prefix in SEED_PREFIXES:
        if key.startswith(seed_prefix):
            return prefix + key[len(seed_prefix):]
    return None


def from_interchange_name(key, layout):
    """The name of interchange tensor `key` in `layout`."""
    if layout == "interchange":
        return key
    for seed_prefix, prefix in SEED_PREFIXES:
        if key.startswith(prefix):
            return seed_prefix + key[len(prefix):]
    raise InteropError(f"no {layout} name for '{key}'")


def detect_layout(keys):
    keys = set(keys)
    if "conv1.0.weight" in keys:
        return "seed"
    if "conv1.weight" in keys or "bn1.weight" in keys:
        return "interchange"
    sample = ", ".join(sorted(keys)[:6])
    raise InteropError(f"cannot tell the naming layout: neither 'conv1.weight' nor 'conv1.0.weight' is present (keys: {sample} ...)")


def unwrap_checkpoint(obj, source):
    """The state_dict inside a torch.load result."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise InteropError(f"{source}: not a state_dict (got {type(obj).__name__}); save the model's state_dict(), not the module")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def infer_configuration(tensors, source, dropout=0.5):
    """The envnet.configuration of interchange-named tensors."""
    fc5, fc7 = tensors.get("fc5.weight"), tensors.get("fc7.weight")
    if fc5 is None or fc7 is None or fc5.dim() != 2 or fc7.dim() != 2:
        raise InteropError(f"{source}: missing fc5.weight or fc7.weight (is this an EnvNet?)")
    variant = "seed" if "conv1.bias" in tensors else "official"
    return {"variant": variant, "classCount": int(fc7.shape[0]), "hiddenUnits": int(fc5.shape[0]),
            "dropoutProbability": float(dropout)}


def check_tensors(tensors, configuration, source):
    """Checks keys and shapes of interchange-named tensors (conv1/conv2 weights 3-D or 4-D)."""
    shapes = expected_shapes(configuration["variant"], configuration["classCount"], configuration["hiddenUnits"])
    missing = [k for k in interchange_keys(configuration["variant"]) if k not in tensors]
    if missing:
        raise InteropError(f"{source}: missing tensor '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(k for k in tensors if k not in shapes)
    if extra:
        hint = " (EnvNet's conv3/conv4 have no bias)" if extra[0] in ("conv3.bias", "conv4.bias") else ""
        raise InteropError(f"{source}: unexpected tensor '{extra[0]}'{hint}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    for key, shape in shapes.items():
        actual = tuple(tensors[key].shape)
        if key in ("conv1.weight", "conv2.weight") and len(actual) == 3:
            actual = (actual[0], actual[1], 1, actual[2])
        if actual != shape:
            raise InteropError(f"{source}: tensor '{key}' has shape {list(tensors[key].shape)}, expected {list(shape)}")


def state_dict_to_interchange(state, layout="auto", source="state_dict"):
    """Maps a PyTorch state_dict to float32 interchange tensors (conv1/conv2 weights 4-D),
    dropping num_batches_tracked. Returns (tensors, layout used)."""
    import torch

    state = unwrap_checkpoint(state, source)
    if layout == "auto":
        layout = detect_layout(state.keys())
    tensors = {}
    for key, value in state.items():
        if key.endswith(".num_batches_tracked"):
            continue
        name = to_interchange_name(key, layout)
        if name is None:
            raise InteropError(f"{source}: unexpected tensor '{key}' for the {layout} layout")
        if not isinstance(value, torch.Tensor):
            raise InteropError(f"{source}: '{key}' is not a tensor")
        if not value.is_floating_point():
            raise InteropError(f"{source}: tensor '{key}' has dtype {value.dtype}, expected a floating-point type")
        value = value.detach().to(torch.float32).contiguous()
        if name in ("conv1.weight", "conv2.weight") and value.dim() == 3:
            value = value.unsqueeze(2).contiguous()  # Conv1d [O, C, k] -> [O, C, 1, k]
        tensors[name] = value
    return tensors, layout


def read_class_names(text, count):
    """Class names from a .json list, a text file with one name per line, or a comma-separated list."""
    if text is None:
        return [f"class {i}" for i in range(count)]
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            content = f.read()
        if text.endswith(".json"):
            names = json.loads(content)
            if isinstance(names, dict):
                names = names.get("class_names", names.get("classNames"))
        else:
            names = [line.strip() for line in content.splitlines() if line.strip()]
    else:
        names = [name.strip() for name in text.split(",")]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InteropError(f"class names {text!r}: expected a list of strings")
    if len(names) != count:
        raise InteropError(f"{len(names)} class names for a network with {count} classes")
    return names


def metadata_for(configuration, class_names):
    """The safetensors metadata EnvNet.save writes."""
    config = {"variant": configuration["variant"], "classCount": configuration["classCount"],
              "hiddenUnits": configuration["hiddenUnits"], "dropoutProbability": configuration["dropoutProbability"]}
    return {"format": "pt",
            "envnet.configuration": json.dumps(config, separators=(",", ":")),
            "envnet.class_names": json.dumps(class_names, separators=(",", ":"), ensure_ascii=False)}


def convert(input_path, output_path, layout="auto", class_names=None, dropout=0.5):
    """.pt -> safetensors. Returns (configuration, layout used)."""
    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(input_path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle of a module, or a damaged file
        raise InteropError(f"{input_path}: cannot load a state_dict with torch.load(weights_only=True): {error}".splitlines()[0])
    tensors, layout = state_dict_to_interchange(state, layout, input_path)
    configuration = infer_configuration(tensors, input_path, dropout)
    check_tensors(tensors, configuration, input_path)
    names = read_class_names(class_names, configuration["classCount"])
    ordered = {key: tensors[key] for key in interchange_keys(configuration["variant"])}
    save_file(ordered, output_path, metadata=metadata_for(configuration, names))
    return configuration, layout


def dependencies_installed():
    """True when torch and safetensors import; otherwise says which is missing on stderr."""
    try:
        import torch  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as error:
        print(f"error: {error.name} is not installed (pip install 'torch==2.13.0+cpu' safetensors)", file=sys.stderr)
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch EnvNet state_dict (.pt) -> EnvNet safetensors")
    parser.add_argument("input", help="a torch.save'd state_dict (.pt/.pth)")
    parser.add_argument("output", help="the safetensors file to write")
    parser.add_argument("--layout", choices=("auto",) + LAYOUTS, default="auto",
                        help="naming of the state_dict: interchange (conv1.weight, bn1.*) or seed (conv1.0.weight, conv1.1.*); default: detect")
    parser.add_argument("--class-names", help="a .json list, a text file with one name per line, or a comma-separated list (default: 'class 0', 'class 1', ...)")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout probability recorded in the configuration (default 0.5)")
    args = parser.parse_args(argv)
    if not dependencies_installed():
        return 1
    try:
        configuration, layout = convert(args.input, args.output, args.layout, args.class_names, args.dropout)
    except (InteropError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.input} ({layout} layout) -> {args.output}: {json.dumps(configuration, separators=(',', ':'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
