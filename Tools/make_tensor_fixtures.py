#!/usr/bin/env python3
"""Writes PyTorch reference results for the EnvNetTensor convolution and pooling kernels.

Usage: python3 Tools/make_tensor_fixtures.py
Output: Tests/EnvNetTensorTests/Fixtures/convolution.json and pooling.json
Needs torch (CPU build: pip install 'torch==2.13.0+cpu'). Deterministic: fixed seeds, float64
math rounded to float32 at the end, so the fixtures do not depend on the machine's kernels.
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnvNetTensorTests", "Fixtures")


def pack(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % x) for x in t.reshape(-1).tolist()]}


def conv_case(name, n, c, h, w, o, kernel, stride=(1, 1), padding=(0, 0), dilation=(1, 1), bias=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64).requires_grad_(True)
    weight = (torch.randn(o, c, *kernel, generator=g, dtype=torch.float64) * 0.3).to(torch.float32).to(torch.float64).requires_grad_(True)
    b = (torch.randn(o, generator=g, dtype=torch.float64)).to(torch.float32).to(torch.float64).requires_grad_(True) if bias else None
    y = torch.nn.functional.conv2d(x, weight, b, stride=stride, padding=padding, dilation=dilation)
    upstream = torch.randn(y.shape, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64)
    y.backward(upstream)
    tensors = {"input": pack(x), "weight": pack(weight), "output": pack(y), "gradient_output": pack(upstream),
               "gradient_input": pack(x.grad), "gradient_weight": pack(weight.grad)}
    if bias:
        tensors["bias"] = pack(b)
        tensors["gradient_bias"] = pack(b.grad)
    return {"name": name, "kernel": list(kernel), "stride": list(stride), "padding": list(padding),
            "dilation": list(dilation), "bias": bias, "tensors": tensors}


def pool_case(name, n, c, h, w, kernel, stride, padding=(0, 0), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64).requires_grad_(True)
    y, indices = torch.nn.functional.max_pool2d(x, kernel, stride, padding, return_indices=True)
    upstream = torch.randn(y.shape, generator=g, dtype=torch.float64).to(torch.float32).to(torch.float64)
    y.backward(upstream)
    return {"name": name, "kernel": list(kernel), "stride": list(stride), "padding": list(padding),
            "indices": [int(i) for i in indices.reshape(-1).tolist()],
            "tensors": {"input": pack(x), "output": pack(y), "gradient_output": pack(upstream), "gradient_input": pack(x.grad)}}


def main():
    os.makedirs(OUT, exist_ok=True)
    conv = [
        # EnvNet's shapes at small widths.
        conv_case("envnet conv1 1x8", 2, 1, 1, 40, 8, (1, 8), seed=1),
        conv_case("envnet conv2 40->8 1x8", 2, 40, 1, 24, 8, (1, 8), seed=2),
        conv_case("envnet conv3 1->6 8x13", 2, 1, 12, 20, 6, (8, 13), seed=3),
        conv_case("envnet conv4 5->5 1x5", 2, 5, 3, 12, 5, (1, 5), seed=4),
        # The general geometry: stride, padding, dilation, bias.
        conv_case("strided padded dilated with bias", 2, 3, 9, 11, 4, (3, 2), stride=(2, 3), padding=(1, 2), dilation=(2, 1), bias=True, seed=5),
        conv_case("seed variant conv1d padding 4 with bias", 2, 2, 1, 17, 3, (1, 8), padding=(0, 4), bias=True, seed=6),
        conv_case("pointwise 1x1", 3, 4, 2, 5, 3, (1, 1), bias=True, seed=7),
    ]
    pool = [
        pool_case("envnet pool2 1x4 stride 4", 2, 3, 1, 17, (1, 4), (1, 4), seed=11),
        pool_case("envnet pool3 3x3 stride 3", 2, 2, 10, 11, (3, 3), (3, 3), seed=12),
        pool_case("padded 3x3 stride 2", 1, 2, 7, 8, (3, 3), (2, 2), padding=(1, 1), seed=13),
    ]
    with open(os.path.join(OUT, "convolution.json"), "w") as f:
        json.dump({"generator": "Tools/make_tensor_fixtures.py", "torch": torch.__version__, "cases": conv}, f)
    with open(os.path.join(OUT, "pooling.json"), "w") as f:
        json.dump({"generator": "Tools/make_tensor_fixtures.py", "torch": torch.__version__, "cases": pool}, f)


if __name__ == "__main__":
    main()
