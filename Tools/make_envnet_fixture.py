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

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures")
HIDDEN, CLASSES = 16, 5


class EnvNet(nn.Module):
    """EnvNet with the interchange names. variant 'official': 2-D convolutions with 1xk kernels, no
    padding, input 24014. 'seed': 1-D convolutions with padding 4 and bias for conv1/conv2, input 24000."""

    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        if variant == "official":
            self.conv1 = nn.Conv2d(1, 40, (1, 8), bias=False)
            self.conv2 = nn.Conv2d(40, 40, (1, 8), bias=False)
        else:
            self.conv1 = nn.Conv1d(1, 40, 8, padding=4)
            self.conv2 = nn.Conv1d(40, 40, 8, padding=4)
        self.bn1 = nn.BatchNorm2d(40) if variant == "official" else nn.BatchNorm1d(40)
        self.bn2 = nn.BatchNorm2d(40) if variant == "official" else nn.BatchNorm1d(40)
        self.conv3 = nn.Conv2d(1, 50, (8, 13), bias=False)
        self.bn3 = nn.BatchNorm2d(50)
        self.conv4 = nn.Conv2d(50, 50, (1, 5), bias=False)
        self.bn4 = nn.BatchNorm2d(50)
        self.fc5 = nn.Linear(7700, HIDDEN)
        self.fc6 = nn.Linear(HIDDEN, HIDDEN)
        self.fc7 = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        if self.variant == "official":
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            x = nn.functional.max_pool2d(x, (1, 160), (1, 160))
        else:
            x = x.reshape(x.shape[0], 1, -1)
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            x = nn.functional.max_pool1d(x, 160, 160).unsqueeze(2)
        x = x.transpose(1, 2)
        x = torch.relu(self.bn3(self.conv3(x)))
        x = nn.functional.max_pool2d(x, 3, 3)
        x = torch.relu(self.bn4(self.conv4(x)))
        x = nn.functional.max_pool2d(x, (1, 3), (1, 3))
        x = x.flatten(1)
        x = torch.relu(self.fc5(x))
        x = torch.relu(self.fc6(x))
        return self.fc7(x)


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
        net = EnvNet(variant)
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
