#!/usr/bin/env python3
"""Writes a PyTorch EnvNet's weights (safetensors, interchange names) and its logits for fixed inputs.

Usage: python3 Tools/make_envnet_fixture.py
Output (Tests/EnvNetModelTests/Fixtures/):
  envnet_official.safetensors, envnet_seed.safetensors: state_dicts saved by safetensors.torch.save_file
  envnet_io.safetensors: inputs and the logits PyTorch computes for them in evaluation mode
The classifier is narrowed (fc width 16, 5 classes) to keep the files small; every other size is
the paper's. Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_interop_fixture import InterchangeEnvNet  # noqa: E402  (the one PyTorch EnvNet of the tools)
OUT = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures")
HIDDEN, CLASSES = 16, 5


def randomize(net, generator):
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * (0.5 if "bn" in name else (2.0 / max(1, p[0].numel())) ** 0.5))
            if name.startswith("bn") and name.endswith("weight"):
                p.add_(1.0)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=generator) + 0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(2017)
    io = {}
    for variant, length in (("official", 24014), ("seed", 24000)):
        net = InterchangeEnvNet(variant, class_count=CLASSES, hidden_units=HIDDEN)
        randomize(net, generator)
        net.eval()
        x = torch.randn(2, 1, 1, length, generator=generator)
        x[1] *= 0.05  # a quiet window too
        with torch.no_grad():
            logits = net(x)
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, os.path.join(OUT, f"envnet_{variant}.safetensors"))
        io[f"{variant}.input"] = x.contiguous()
        io[f"{variant}.logits"] = logits.contiguous()
    save_file(io, os.path.join(OUT, "envnet_io.safetensors"))


if __name__ == "__main__":
    main()
