#!/usr/bin/env python3
"""Writes the PyTorch-interop fixture: a seed-layout PyTorch EnvNet state_dict, its logits on fixed
inputs, and the safetensors Tools/pytorch_to_safetensors.py makes of it.

Usage: python3 Tools/make_interop_fixture.py
Output (Tests/EnvNetModelTests/Fixtures/):
  interop_seed.pt            torch.save of the state_dict of SeedEnvNet (nn.Sequential names:
                             conv1.0.weight, conv1.1.running_mean, fc5.0.weight, ...)
  interop_io.safetensors     "input" [2, 1, 1, 24000] and the "logits" PyTorch computes in evaluation mode
  interop_seed.safetensors   interop_seed.pt converted by Tools/pytorch_to_safetensors.py
                             (what Tests/EnvNetModelTests/InteropTests.swift loads)
The classifier is narrowed (fc width 16, 5 classes) to keep the files small; every other size is
the paper's. interop_swift*.safetensors, the other direction, are written by the Swift test
(see InteropTests.swift). Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pytorch_to_safetensors  # noqa: E402

OUT = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures")
HIDDEN, CLASSES = 16, 5
CLASS_NAMES = ["dog", "rooster", "pig", "cow", "frog"]  # ESC-50's first five classes


class SeedEnvNet(nn.Module):
    """The seed article's layout: nn.Sequential blocks, 1-D convolutions with padding 4 and bias
    for conv1/conv2, input [N, 24000] (or [N, 1, 1, 24000]). Its state_dict names define the
    converters' "seed" layout."""

    def __init__(self, class_count=50, hidden_units=4096, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv1d(1, 40, 8, padding=4), nn.BatchNorm1d(40), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv1d(40, 40, 8, padding=4), nn.BatchNorm1d(40), nn.ReLU(), nn.MaxPool1d(160, 160))
        self.conv3 = nn.Sequential(nn.Conv2d(1, 50, (8, 13), bias=False), nn.BatchNorm2d(50), nn.ReLU(), nn.MaxPool2d(3, 3))
        self.conv4 = nn.Sequential(nn.Conv2d(50, 50, (1, 5), bias=False), nn.BatchNorm2d(50), nn.ReLU(), nn.MaxPool2d((1, 3), (1, 3)))
        self.fc5 = nn.Sequential(nn.Linear(7700, hidden_units), nn.ReLU(), nn.Dropout(dropout))
        self.fc6 = nn.Sequential(nn.Linear(hidden_units, hidden_units), nn.ReLU(), nn.Dropout(dropout))
        self.fc7 = nn.Linear(hidden_units, class_count)

    def forward(self, x):
        x = x.reshape(x.shape[0], 1, -1)          # [N, 1, 24000]
        x = self.conv2(self.conv1(x))             # [N, 40, 150]
        x = x.unsqueeze(1)                        # [N, 1, 40, 150]: the axis swap
        x = self.conv4(self.conv3(x))             # [N, 50, 11, 14]
        x = x.flatten(1)
        return self.fc7(self.fc6(self.fc5(x)))


class InterchangeEnvNet(nn.Module):
    """EnvNet with the interchange names (also used by Tools/make_envnet_fixture.py): variant "official"
    (2-D convolutions, input 24014) or "seed" (Conv1d with padding 4 and bias for conv1/conv2, input 24000)."""

    def __init__(self, variant="official", class_count=50, hidden_units=4096, dropout=0.5):
        super().__init__()
        self.variant = variant
        # Modules in this order (conv1, conv2, bn1, bn2, ...): Tools/make_envnet_fixture.py draws
        # random weights in parameter order, so the order fixes its fixtures' values.
        if variant == "official":
            self.conv1 = nn.Conv2d(1, 40, (1, 8), bias=False)
            self.conv2 = nn.Conv2d(40, 40, (1, 8), bias=False)
            self.bn1 = nn.BatchNorm2d(40)
            self.bn2 = nn.BatchNorm2d(40)
        else:
            self.conv1 = nn.Conv1d(1, 40, 8, padding=4)
            self.conv2 = nn.Conv1d(40, 40, 8, padding=4)
            self.bn1 = nn.BatchNorm1d(40)
            self.bn2 = nn.BatchNorm1d(40)
        self.conv3 = nn.Conv2d(1, 50, (8, 13), bias=False)
        self.bn3 = nn.BatchNorm2d(50)
        self.conv4 = nn.Conv2d(50, 50, (1, 5), bias=False)
        self.bn4 = nn.BatchNorm2d(50)
        self.fc5 = nn.Linear(7700, hidden_units)
        self.fc6 = nn.Linear(hidden_units, hidden_units)
        self.fc7 = nn.Linear(hidden_units, class_count)
        self.dropout = nn.Dropout(dropout)

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
        x = self.dropout(torch.relu(self.fc5(x)))
        x = self.dropout(torch.relu(self.fc6(x)))
        return self.fc7(x)


def randomize(net, generator):
    """Random weights and BatchNorm statistics, so that every tensor matters."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.copy_(1.0 + 0.5 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
            elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                scale = (2.0 / module.weight[0].numel()) ** 0.5  # He normal
                module.weight.copy_(scale * torch.randn(module.weight.shape, generator=generator))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))


def main():
    from safetensors.torch import save_file

    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(2018)
    net = SeedEnvNet(CLASSES, HIDDEN)
    randomize(net, generator)
    net.eval()
    x = torch.randn(2, 1, 1, 24000, generator=generator)
    x[1] *= 0.05  # a quiet window too
    with torch.no_grad():
        logits = net(x)
    pt_path = os.path.join(OUT, "interop_seed.pt")
    torch.save(net.state_dict(), pt_path)
    save_file({"input": x.contiguous(), "logits": logits.contiguous()}, os.path.join(OUT, "interop_io.safetensors"))
    configuration, layout = pytorch_to_safetensors.convert(
        pt_path, os.path.join(OUT, "interop_seed.safetensors"), layout="seed", class_names=",".join(CLASS_NAMES))
    print(f"wrote interop_seed.pt, interop_io.safetensors, interop_seed.safetensors ({layout} layout, {configuration})")
    print("logits:", logits.tolist())


if __name__ == "__main__":
    main()
