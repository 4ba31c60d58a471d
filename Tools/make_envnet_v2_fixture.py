#!/usr/bin/env python3
"""Writes a PyTorch EnvNet-v2's weights, its logits for fixed inputs, and one training step's gradients.

Usage: python3 Tools/make_envnet_v2_fixture.py
Output (Tests/EnvNetModelTests/Fixtures/envnet_v2.safetensors), under prefixes:
  model.*      the state_dict (interchange names conv1 ... conv10, bn1 ... bn10, fc11 ... fc13)
  eval.input, eval.logits              two windows and their logits in evaluation mode
  train.input, train.labels, train.loss  a training batch (BatchNorm on batch statistics, dropout 0)
  grad.*       the gradient of the mean cross-entropy with respect to every parameter
  block{k}.*   for k = 1 ... 10, each block (conv{k}, bn{k} in training mode, ReLU, its pooling)
               alone on a small random input with the model's weights: input, output_grad (a
               random gradient at the block's output), input_grad, and grad.conv{k}.weight,
               grad.bn{k}.weight, grad.bn{k}.bias. Checked block by block, every gradient is
               compared from PyTorch's own inputs, so no ReLU decision can differ upstream.
fc11 and fc12 are narrowed to 8 units and the classes to 5, to keep the file small (the full
network has about 101 M parameters); every convolution has the authors' sizes.
Needs torch and safetensors (pip install 'torch==2.13.0+cpu' safetensors).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures", "envnet_v2.safetensors")
HIDDEN, CLASSES, LENGTH = 8, 5, 66650

# (in, out, kernel, stride, pool after) of conv1 ... conv10, as bc_learning_sound's envnetv2.py.
PLAN = [
    (1, 32, (1, 64), (1, 2), None), (32, 64, (1, 16), (1, 2), (1, 64)),
    (1, 32, (8, 8), (1, 1), None), (32, 32, (8, 8), (1, 1), (5, 3)),
    (32, 64, (1, 4), (1, 1), None), (64, 64, (1, 4), (1, 1), (1, 2)),
    (64, 128, (1, 2), (1, 1), None), (128, 128, (1, 2), (1, 1), (1, 2)),
    (128, 256, (1, 2), (1, 1), None), (256, 256, (1, 2), (1, 1), (1, 2)),
]


class EnvNetV2(nn.Module):
    def __init__(self, classes=CLASSES, hidden=HIDDEN, dropout=0.5):
        super().__init__()
        for index, (cin, cout, kernel, stride, _) in enumerate(PLAN, start=1):
            setattr(self, f"conv{index}", nn.Conv2d(cin, cout, kernel, stride=stride, bias=False))
            setattr(self, f"bn{index}", nn.BatchNorm2d(cout))  # PyTorch's eps 1e-5, momentum 0.1
        self.fc11 = nn.Linear(256 * 10 * 8, hidden)
        self.fc12 = nn.Linear(hidden, hidden)
        self.fc13 = nn.Linear(hidden, classes)
        self.dropout = dropout

    def forward(self, x):
        for index, (_, _, _, _, pool) in enumerate(PLAN, start=1):
            x = F.relu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
            if pool is not None:
                x = F.max_pool2d(x, pool)
            if index == 2:
                x = x.transpose(1, 2)
        x = x.reshape(x.shape[0], -1)
        x = F.dropout(F.relu(self.fc11(x)), self.dropout, self.training)
        x = F.dropout(F.relu(self.fc12(x)), self.dropout, self.training)
        return self.fc13(x)


def randomize(net, generator):
    with torch.no_grad():
        for name, p in net.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=generator) * (0.3 if name.startswith("bn") else (2.0 / fan_in) ** 0.5))
            if name.startswith("bn") and name.endswith("weight"):
                p.add_(1.0)
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=generator) + 0.5)


def decision_margin(conv, bn, pool, x):
    """The smallest distance, in float64, of a block's pre-activation from ReLU's kink, and of a
    pooling window's positive maximum from its runner-up."""
    with torch.no_grad():
        pre = F.conv2d(x.double(), conv.weight.double(), stride=conv.stride)
        mean = pre.mean(dim=(0, 2, 3), keepdim=True)
        var = pre.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        pre = (pre - mean) / torch.sqrt(var + bn.eps) * bn.weight.double().view(1, -1, 1, 1) + bn.bias.double().view(1, -1, 1, 1)
        margin = pre.abs().min().item()
        if pool is not None:
            activated = F.relu(pre)
            n, c, h, w = activated.shape
            kh, kw = pool
            windows = activated[:, :, : h // kh * kh, : w // kw * kw].reshape(n, c, h // kh, kh, w // kw, kw)
            windows = windows.permute(0, 1, 2, 4, 3, 5).reshape(-1, kh * kw)
            top = windows.topk(2, dim=1).values
            positive = top[:, 0] > 0
            if positive.any():
                margin = min(margin, (top[positive, 0] - top[positive, 1]).min().item())
    return margin


def main():
    generator = torch.Generator().manual_seed(2018)
    net = EnvNetV2()
    randomize(net, generator)
    # Cloned: the training step below updates the running statistics in place.
    tensors = {f"model.{k}": v.clone().contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    net.eval()
    x = torch.randn(2, 1, 1, LENGTH, generator=generator) * 0.3
    x[1] *= 0.05  # a quiet window too
    with torch.no_grad():
        tensors["eval.input"] = x.contiguous()
        tensors["eval.logits"] = net(x).contiguous()
    # One training step's gradients: batch statistics, dropout off (its masks are random).
    net.train()
    net.dropout = 0.0
    x = torch.randn(2, 1, 1, LENGTH, generator=generator) * 0.3
    labels = torch.tensor([1, 3])
    loss = F.cross_entropy(net(x), labels)
    loss.backward()
    tensors["train.input"] = x.contiguous()
    tensors["train.labels"] = labels.float()
    tensors["train.loss"] = loss.detach().reshape(1)
    for name, p in net.named_parameters():
        tensors[f"grad.{name}"] = p.grad.contiguous()
    # Each block alone: the real kernel sizes, strides and channels on small inputs.
    shapes = [(1, 1000), (1, 400), (16, 24), (14, 20)] + [(2, 12)] * 6
    for index, ((cin, _, _, _, pool), (height, width)) in enumerate(zip(PLAN, shapes), start=1):
        conv, bn = getattr(net, f"conv{index}"), getattr(net, f"bn{index}")
        conv.zero_grad()
        bn.zero_grad()
        # Redrawn until no ReLU or max-pooling decision is within 1e-4 of flipping (in float64):
        # float32 rounding could otherwise decide it differently here and in Swift.
        while True:
            x = torch.randn(2, cin, height, width, generator=generator) * 0.3
            if decision_margin(conv, bn, pool, x) > 1e-4:
                break
        x.requires_grad_()
        y = F.relu(bn(conv(x)))
        if pool is not None:
            y = F.max_pool2d(y, pool)
        g = torch.randn(y.shape, generator=generator)
        y.backward(g)
        tensors[f"block{index}.input"] = x.detach().contiguous()
        tensors[f"block{index}.output_grad"] = g.contiguous()
        tensors[f"block{index}.input_grad"] = x.grad.contiguous()
        tensors[f"block{index}.grad.conv{index}.weight"] = conv.weight.grad.clone().contiguous()
        tensors[f"block{index}.grad.bn{index}.weight"] = bn.weight.grad.clone().contiguous()
        tensors[f"block{index}.grad.bn{index}.bias"] = bn.bias.grad.clone().contiguous()
    save_file(tensors, OUT)
    print(f"wrote {OUT}: loss {loss.item():.6f}, {sum(v.numel() for v in tensors.values())} values")


if __name__ == "__main__":
    main()
