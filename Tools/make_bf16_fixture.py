#!/usr/bin/env python3
"""Writes PyTorch's bf16 autocast logits of the EnvNet fixture: the reference for how far bf16 moves
the logits from fp32.

Usage: python3 Tools/make_bf16_fixture.py   (after make_envnet_fixture.py; reads its files)
Output: Tests/EnvNetModelTests/Fixtures/envnet_bf16_io.safetensors with
  official.input             the fixture's input [2, 1, 1, 24014] (copied, so the test reads one file)
  official.logits            PyTorch's fp32 logits
  official.autocast_logits   the same network under torch.autocast("cpu", dtype=torch.bfloat16)
Autocast runs the convolutions and linear layers with bf16 operands and fp32 sums, and keeps
their outputs in bf16 (BatchNorm and pooling then read bf16 values); the Swift bf16 precision
keeps fp32 activations, so its logits are expected to lie closer to fp32 than autocast's.
Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_interop_fixture import InterchangeEnvNet  # noqa: E402
from make_envnet_fixture import CLASSES, HIDDEN, OUT  # noqa: E402


def main():
    net = InterchangeEnvNet("official", class_count=CLASSES, hidden_units=HIDDEN)
    net.load_state_dict(load_file(os.path.join(OUT, "envnet_official.safetensors")))
    net.eval()
    x = load_file(os.path.join(OUT, "envnet_io.safetensors"))["official.input"]
    with torch.no_grad():
        exact = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net(x)
    mixed = mixed.float()
    scale = exact.abs().max().item()
    print(f"autocast vs fp32: max |difference| {(mixed - exact).abs().max().item():.4g} of scale {scale:.4g} "
          f"({(mixed - exact).abs().max().item() / scale:.3e})")
    save_file({"official.input": x.contiguous(), "official.logits": exact.contiguous(),
               "official.autocast_logits": mixed.contiguous()}, os.path.join(OUT, "envnet_bf16_io.safetensors"))


if __name__ == "__main__":
    main()
