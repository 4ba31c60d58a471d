#!/usr/bin/env python3
"""How far PyTorch's bf16 autocast moves a training step of a freshly initialised EnvNet (fc 256, 10
classes, a batch of 4 windows of uniform noise, BatchNorm on batch statistics) from fp32: the
training-mode logits' largest difference over their scale, and the cosine between each weight's
gradients. Tests/EnvNetModelTests/PrecisionTests.swift holds our bf16 to the same bounds.

Usage: python3 Tools/bf16_training_reference.py
Printed on 2026-12-02 (torch 2.13.0+cpu): logits 4.97e-2; cosines 0.83 (bn1) to 0.9994 (fc7), mean 0.93.
"""
import sys, torch
sys.path.insert(0, "Tools")
from make_interop_fixture import InterchangeEnvNet
torch.manual_seed(4)
net = InterchangeEnvNet("official", class_count=10, hidden_units=256)
net.train()
g = torch.Generator().manual_seed(5)
x = torch.rand(4, 1, 1, 24014, generator=g) * 2 - 1
up = torch.randn(4, 10, generator=g)
def grads(ac):
    net.zero_grad()
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ac):
        y = net(x)
    (y.float() * up).sum().backward()
    return y.detach().float(), {n: p.grad.clone() for n, p in net.named_parameters()}
y0, g0 = grads(False); y1, g1 = grads(True)
print("training logits rel diff", ((y1 - y0).abs().max() / y0.abs().max()).item())
cosines = []
for n in g0:
    if n.endswith("weight"):
        a, b = g0[n].flatten(), g1[n].flatten()
        cosines.append(torch.nn.functional.cosine_similarity(a, b, dim=0).item())
        print(n, round(cosines[-1], 4))
print("mean cosine", round(sum(cosines) / len(cosines), 4))
