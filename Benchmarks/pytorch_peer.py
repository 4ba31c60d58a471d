#!/usr/bin/env python3
"""The PyTorch peer of `envnet bench`: EnvNet with the official sizes, as the authors' code builds it
(2-D convolutions with 1xk kernels), measured the same way.

  training step = zero grads, forward, cross-entropy, backward, SGD step (momentum 0.9, Nesterov,
                  weight decay 5e-4), batch 64
  inference     = evaluation-mode forward of 64 windows without gradients

Prints one JSON object: samples/s, windows/s (medians of --repetitions after one warm-up) and the
process's peak resident memory. torch threads = cores (or --threads).
Usage: python3 Benchmarks/pytorch_peer.py [--batch-size 64] [--repetitions 5] [--threads N]
Needs torch (CPU build: pip install 'torch==2.13.0+cpu').
"""
import argparse
import json
import os
import resource
import statistics
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
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = EnvNet()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.rand(args.batch_size, 1, 1, 24014) * 2 - 1
    labels = torch.arange(args.batch_size) % 50

    def step():
        net.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()

    def infer():
        net.eval()
        with torch.no_grad():
            net(x)

    def timed(function):
        function()  # warm-up
        times = []
        for _ in range(args.repetitions):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    training = timed(step)
    inference = timed(infer)
    print(json.dumps({
        "implementation": f"PyTorch {torch.__version__}",
        "threads": args.threads,
        "batchSize": args.batch_size,
        "repetitions": args.repetitions,
        "trainingSamplesPerSecond": args.batch_size / training,
        "inferenceWindowsPerSecond": args.batch_size / inference,
        "peakResidentBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
