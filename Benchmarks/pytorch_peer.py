#!/usr/bin/env python3
"""The PyTorch peer of `envnet bench`: EnvNet with the official sizes, or EnvNet-v2 (--network
envnet-v2), as the authors' code builds them (2-D convolutions with 1xk kernels), measured the same way.

  training step = zero grads, forward, cross-entropy, backward, SGD step (momentum 0.9, Nesterov,
                  weight decay 5e-4), batch 64
  inference     = evaluation-mode forward of 64 windows without gradients

Prints one JSON object: samples/s, windows/s (medians of --repetitions after one warm-up) and the
process's peak resident memory. torch threads = cores (or --threads). With --layers it also times
each convolution alone (forward, and forward + backward with respect to input and weight, training
mode) and prints its GFLOP/s: how well the layer suits PyTorch's convolution backend.
With --precision bf16 the forward passes run under torch.autocast("cpu", dtype=torch.bfloat16) (bf16
convolutions and linear layers with fp32 weights, BatchNorm and loss in fp32); --channels-last puts the
network and its input in channels_last; --compile wraps the network in torch.compile. These are the
setups a PyTorch user picks on a CPU with AVX512-BF16 or AMX (issue 19).
Usage: python3 Benchmarks/pytorch_peer.py [--network envnet|envnet-v2] [--batch-size 64] [--repetitions 5] [--threads N] [--layers]
                                          [--precision fp32|bf16] [--channels-last] [--compile]
Needs torch (CPU build: pip install 'torch==2.13.0+cpu').
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn


class EnvNet(nn.Module):
    def __init__(self, classes=50):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 40, (1, 8), bias=False)
        self.bn1 = nn.BatchNorm2d(40)
        self.conv2 = nn.Conv2d(40, 40, (1, 8), bias=False)
        self.bn2 = nn.BatchNorm2d(40)
        self.conv3 = nn.Conv2d(1, 50, (8, 13), bias=False)
        self.bn3 = nn.BatchNorm2d(50)
        self.conv4 = nn.Conv2d(50, 50, (1, 5), bias=False)
        self.bn4 = nn.BatchNorm2d(50)
        self.fc5 = nn.Linear(7700, 4096)
        self.fc6 = nn.Linear(4096, 4096)
        self.fc7 = nn.Linear(4096, classes)
        self.dropout = nn.Dropout(0.5)
        he_initialize(self)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = nn.functional.max_pool2d(x, (1, 160), (1, 160))
        x = x.transpose(1, 2)
        x = torch.relu(self.bn3(self.conv3(x)))
        x = nn.functional.max_pool2d(x, 3, 3)
        x = torch.relu(self.bn4(self.conv4(x)))
        x = nn.functional.max_pool2d(x, (1, 3), (1, 3))
        x = x.flatten(1)
        x = self.dropout(torch.relu(self.fc5(x)))
        x = self.dropout(torch.relu(self.fc6(x)))
        return self.fc7(x)


# (in, out, kernel, stride, pool after) of conv1 ... conv10: the fixture script's, one definition.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tools"))
from make_envnet_v2_fixture import PLAN as V2_PLAN  # noqa: E402


def he_initialize(net):
    """He-normal convolution and linear weights, zero biases (the Swift networks' initializers)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class EnvNetV2(nn.Module):
    def __init__(self, classes=50):
        super().__init__()
        for index, (cin, cout, kernel, stride, _) in enumerate(V2_PLAN, start=1):
            setattr(self, f"conv{index}", nn.Conv2d(cin, cout, kernel, stride=stride, bias=False))
            setattr(self, f"bn{index}", nn.BatchNorm2d(cout))
        self.fc11 = nn.Linear(256 * 10 * 8, 4096)
        self.fc12 = nn.Linear(4096, 4096)
        self.fc13 = nn.Linear(4096, classes)
        self.dropout = nn.Dropout(0.5)
        he_initialize(self)

    def forward(self, x):
        for index, (_, _, _, _, pool) in enumerate(V2_PLAN, start=1):
            x = torch.relu(getattr(self, f"bn{index}")(getattr(self, f"conv{index}")(x)))
            if pool is not None:
                x = nn.functional.max_pool2d(x, pool)
            if index == 2:
                x = x.transpose(1, 2)
        x = x.flatten(1)
        x = self.dropout(torch.relu(self.fc11(x)))
        x = self.dropout(torch.relu(self.fc12(x)))
        return self.fc13(x)


def layer_report(net, x, repetitions):
    """Each convolution alone on the input it gets in the network: forward ms, training ms
    (forward + backward for input and weight) and GFLOP/s (2 x multiply-adds; backward 2x forward)."""
    inputs = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: inputs.__setitem__(name, i[0].detach()))
             for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    net.eval()
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    rows = []
    for name, conv in net.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        data = inputs[name].clone().requires_grad_()
        with torch.no_grad():
            output = conv(data)
        macs = output.numel() * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]

        def forward():
            with torch.no_grad():
                conv(data)

        def training():
            conv.zero_grad()
            out = conv(data)
            out.backward(torch.ones_like(out))

        forward_seconds = timed(forward, repetitions)
        training_seconds = timed(training, repetitions)
        rows.append({"layer": name, "input": list(data.shape), "gmacs": macs / 1e9,
                     "forwardMilliseconds": forward_seconds * 1e3, "trainingMilliseconds": training_seconds * 1e3,
                     "forwardGFLOPS": 2 * macs / forward_seconds / 1e9, "trainingGFLOPS": 6 * macs / training_seconds / 1e9})
    return rows


def timed(function, repetitions):
    function()  # warm-up
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--network", choices=["envnet", "envnet-v2"], default="envnet")
    parser.add_argument("--layers", action="store_true")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = EnvNet() if args.network == "envnet" else EnvNetV2()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.rand(args.batch_size, 1, 1, 24014 if args.network == "envnet" else 66650) * 2 - 1
    labels = torch.arange(args.batch_size) % 50
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model = torch.compile(net) if args.compile else net
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext

    def step():
        net.train()
        optimizer.zero_grad()
        with autocast():
            logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()

    def infer():
        net.eval()
        with torch.no_grad(), autocast():
            model(x)

    training = timed(step, args.repetitions)
    inference = timed(infer, args.repetitions)
    report = {
        "implementation": f"PyTorch {torch.__version__}",
        "network": args.network,
        "precision": args.precision,
        "channelsLast": args.channels_last,
        "compiled": args.compile,
        "threads": args.threads,
        "batchSize": args.batch_size,
        "repetitions": args.repetitions,
        "trainingSamplesPerSecond": args.batch_size / training,
        "inferenceWindowsPerSecond": args.batch_size / inference,
        "peakResidentBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if args.layers:
        report["layers"] = layer_report(net, x, args.repetitions)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
