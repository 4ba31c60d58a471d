#!/usr/bin/env python3
"""Reference fixtures for EnvNetLayers, computed by PyTorch.

Writes Tests/EnvNetLayersTests/Fixtures/<name>.json, each of the form

    {"tensors": {"name": {"shape": [...], "data": [...]}, ...}, "params": {...}}

Inputs and parameters are drawn as float32 (so the Swift side reads them exactly); the references
are computed in float64 from those values, so the fixtures carry no float32 rounding of their own.
Each layer's backward pass is driven by the scalar loss sum(output * upstream) with a random
`upstream` tensor, whose gradient with respect to the output is `upstream`.

Usage (from the package root): python3 Tools/make_layer_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "EnvNetLayersTests", "Fixtures")


def rand(*shape, scale=1.0):
    """float32 draws, returned as float64 holding exactly those values."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def record(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.flatten().tolist()]}


def f32(t):
    """Rounds to float32 values (kept as float64) - for tensors the Swift side must read exactly."""
    return t.detach().to(torch.float32).to(torch.float64)


def write(name, tensors, params=None):
    path = os.path.join(OUT, name + ".json")
    with open(path, "w") as f:
        json.dump({"tensors": {k: record(v) for k, v in tensors.items()}, "params": params or {}}, f, separators=(",", ":"))
    size = os.path.getsize(path)
    assert size < 200_000, f"{path} is {size} bytes"
    print(f"{path}: {size} bytes")


def leaf(t):
    return t.clone().requires_grad_(True)


def conv_case(name, dims, n, c, o, spatial, kernel, stride, padding, dilation, bias):
    x = leaf(rand(n, c, *spatial))
    w = leaf(rand(o, c, *kernel, scale=0.5))
    b = leaf(rand(o, scale=0.5)) if bias else None
    conv = F.conv1d if dims == 1 else F.conv2d
    y = conv(x, w, b, stride=stride, padding=padding, dilation=dilation)
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    tensors = {"input": x, "weight": w, "output": y, "upstream": upstream,
               "grad_input": x.grad, "grad_weight": w.grad}
    if bias:
        tensors["bias"] = b
        tensors["grad_bias"] = b.grad
    params = {"kernel": list(kernel), "stride": list(stride), "padding": list(padding),
              "dilation": list(dilation), "bias": bias}
    write(name, tensors, params)


def batchnorm_case(name, shape, momentum=0.1, eps=1e-5):
    c = shape[1]
    x = leaf(f32(rand(*shape) * 2 + 0.5))
    w = leaf(f32(1 + rand(c, scale=0.3)))
    b = leaf(rand(c, scale=0.3))
    running_mean0 = rand(c, scale=0.2)
    running_var0 = f32(1 + rand(c, scale=0.2).abs())
    running_mean = running_mean0.clone()
    running_var = running_var0.clone()
    y = F.batch_norm(x, running_mean, running_var, w, b, training=True, momentum=momentum, eps=eps)
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    # Evaluation mode with the updated running statistics (rounded to float32 as the Swift side holds them).
    x_eval = f32(rand(*shape) * 2 + 0.5)
    y_eval = F.batch_norm(x_eval, f32(running_mean), f32(running_var), w.detach(), b.detach(),
                          training=False, momentum=momentum, eps=eps)
    write(name, {
        "input": x, "weight": w, "bias": b,
        "running_mean_before": running_mean0, "running_var_before": running_var0,
        "output": y, "upstream": upstream,
        "grad_input": x.grad, "grad_weight": w.grad, "grad_bias": b.grad,
        "running_mean_after": running_mean, "running_var_after": running_var,
        "eval_input": x_eval, "eval_output": y_eval,
    }, {"momentum": momentum, "eps": eps})


def maxpool_case(name, dims, shape, kernel, stride, padding, dilation):
    # Distinct, well separated values so that the arg-max is unambiguous.
    count = 1
    for s in shape:
        count *= s
    values = torch.randperm(count).to(torch.float64) * 0.25 - count * 0.125
    x = leaf(values.reshape(shape))
    pool = F.max_pool1d if dims == 1 else F.max_pool2d
    y = pool(x, kernel, stride=stride, padding=padding, dilation=dilation)
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    write(name, {"input": x, "output": y, "upstream": upstream, "grad_input": x.grad},
          {"kernel": list(kernel), "stride": list(stride), "padding": list(padding), "dilation": list(dilation)})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20170305)

    # Convolutions: stride, padding, dilation, with and without bias.
    conv_case("conv1d", 1, 2, 3, 4, (13,), (3,), (2,), (1,), (2,), True)
    conv_case("conv1d_nobias", 1, 2, 2, 3, (10,), (4,), (1,), (0,), (1,), False)
    conv_case("conv2d", 2, 2, 3, 4, (7, 8), (3, 2), (2, 1), (1, 2), (1, 2), True)
    conv_case("conv2d_nobias", 2, 2, 2, 3, (5, 9), (2, 3), (1, 2), (0, 1), (2, 1), False)

    # BatchNorm: [N, C], [N, C, L], [N, C, H, W].
    batchnorm_case("batchnorm1d_2d", (6, 4))
    batchnorm_case("batchnorm1d_3d", (4, 3, 5))
    batchnorm_case("batchnorm2d", (3, 4, 5, 6))

    # Max pooling.
    maxpool_case("maxpool1d", 1, (2, 3, 12), (3,), (2,), (1,), (1,))
    maxpool_case("maxpool2d", 2, (2, 2, 7, 9), (3, 2), (2, 2), (1, 0), (1, 1))
    maxpool_case("maxpool2d_dilated", 2, (1, 2, 8, 8), (2, 2), (1, 3), (1, 1), (2, 2))

    # Linear and ReLU.
    x = leaf(rand(5, 7))
    w = leaf(rand(3, 7, scale=0.4))
    b = leaf(rand(3, scale=0.4))
    y = F.linear(x, w, b)
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    write("linear", {"input": x, "weight": w, "bias": b, "output": y, "upstream": upstream,
                     "grad_input": x.grad, "grad_weight": w.grad, "grad_bias": b.grad})

    x = leaf(rand(4, 6))
    y = F.relu(x)
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    write("relu", {"input": x, "output": y, "upstream": upstream, "grad_input": x.grad})

    # Losses: hard labels and soft targets (with exact zeros), moderate and large logits.
    logits = leaf(rand(4, 5, scale=2.0))
    labels = torch.tensor([3, 0, 4, 1])
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    write("cross_entropy_hard", {"logits": logits, "grad_logits": logits.grad, "loss": loss.reshape(1)},
          {"labels": labels.tolist()})

    logits = leaf(rand(4, 5, scale=2.0))
    r = torch.tensor([0.3, 0.75, 1.0, 0.5], dtype=torch.float64)
    targets = torch.zeros(4, 5, dtype=torch.float64)
    for row, (a, b_) in enumerate([(0, 2), (1, 4), (3, 0), (2, 2)]):
        targets[row, a] += r[row]
        targets[row, b_] += 1 - r[row]
    targets = f32(targets)
    loss = F.kl_div(F.log_softmax(logits, dim=1), targets, reduction="batchmean")
    loss.backward()
    write("cross_entropy_soft", {"logits": logits, "targets": targets, "grad_logits": logits.grad,
                                 "loss": loss.reshape(1)})

    logits = leaf(rand(3, 4, scale=1000.0))
    labels = torch.tensor([1, 2, 0])
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    write("cross_entropy_large", {"logits": logits, "grad_logits": logits.grad, "loss": loss.reshape(1)},
          {"labels": labels.tolist()})

    # SGD: momentum 0.9, Nesterov, weight decay 5e-4, MultiStepLR(milestones [1, 2], gamma 0.1),
    # three steps on Linear(4, 6) -> BatchNorm1d(6) -> ReLU -> Linear(6, 3) with cross-entropy.
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                                torch.nn.Linear(6, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(f32(torch.randn(p.shape, dtype=torch.float64) * 0.5))
    initial = {k: v.clone() for k, v in model.state_dict().items() if "num_batches" not in k}
    inputs = [f32(rand(8, 4)) for _ in range(3)]
    targets = [torch.randint(0, 3, (8,)) for _ in range(3)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 2], gamma=0.1)
    losses, lrs = [], []
    for step in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(inputs[step]), targets[step])
        loss.backward()
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(loss.item())
    tensors = {"initial." + k: v for k, v in initial.items()}
    tensors.update({"final." + k: v for k, v in model.state_dict().items() if "num_batches" not in k})
    names = dict(model.named_parameters())
    tensors.update({"momentum." + k: opt.state[names[k]]["momentum_buffer"] for k in names})
    for step in range(3):
        tensors[f"input{step}"] = inputs[step]
    write("sgd", tensors, {"labels": [t.tolist() for t in targets], "losses": losses, "learning_rates": lrs,
                           "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "milestones": [1, 2], "gamma": 0.1})

    # A small EnvNet-like composition: Conv2d(no bias) -> BatchNorm2d -> ReLU -> MaxPool2d(1x3)
    # -> swap C and H -> Conv2d -> ReLU -> Flatten -> Linear, training mode, full gradients.
    x = leaf(rand(2, 1, 1, 20))
    w1 = leaf(rand(3, 1, 1, 4, scale=0.5))
    g1 = leaf(f32(1 + rand(3, scale=0.2)))
    b1 = leaf(rand(3, scale=0.2))
    w2 = leaf(rand(2, 1, 2, 3, scale=0.5))
    c2 = leaf(rand(2, scale=0.2))
    w3 = leaf(rand(4, 2 * 2 * 3, scale=0.3))
    c3 = leaf(rand(4, scale=0.2))
    rm = torch.zeros(3, dtype=torch.float64)
    rv = torch.ones(3, dtype=torch.float64)
    h = F.conv2d(x, w1)                                   # [2, 3, 1, 17]
    h = F.relu(F.batch_norm(h, rm, rv, g1, b1, training=True))
    h = F.max_pool2d(h, (1, 3), stride=(1, 3))           # [2, 3, 1, 5]
    h = h.transpose(1, 2)                                 # [2, 1, 3, 5]
    h = F.relu(F.conv2d(h, w2, c2))                      # [2, 2, 2, 3]
    y = F.linear(h.flatten(1), w3, c3)                   # [2, 4]
    upstream = rand(*y.shape)
    (y * upstream).sum().backward()
    write("composite", {
        "input": x, "conv1.weight": w1, "bn1.weight": g1, "bn1.bias": b1, "conv2.weight": w2, "conv2.bias": c2,
        "fc.weight": w3, "fc.bias": c3, "output": y, "upstream": upstream, "grad_input": x.grad,
        "grad.conv1.weight": w1.grad, "grad.bn1.weight": g1.grad, "grad.bn1.bias": b1.grad,
        "grad.conv2.weight": w2.grad, "grad.conv2.bias": c2.grad, "grad.fc.weight": w3.grad, "grad.fc.bias": c3.grad,
        "bn1.running_mean": rm, "bn1.running_var": rv,
    })


if __name__ == "__main__":
    main()
