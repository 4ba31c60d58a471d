#!/usr/bin/env python3
"""PyTorch interop check, both directions; CI runs it after the Swift tests (.ci/run).

Usage: python3 Tools/check_interop.py

PyTorch -> safetensors -> PyTorch:
  Tests/EnvNetModelTests/Fixtures/interop_seed.pt (seed layout) is converted with
  Tools/pytorch_to_safetensors.py; the result must equal the committed interop_seed.safetensors
  (which the Swift test InteropTests loads and checks against PyTorch's logits). Converted back with
  Tools/safetensors_to_pytorch.py (seed and interchange layouts), the state_dict must hold the
  identical tensors and give PyTorch's logits (interop_io.safetensors).
Swift -> PyTorch:
  interop_swift.safetensors, written by Swift's EnvNet.save, converted to a state_dict, must give in
  PyTorch the logits Swift computed (interop_swift_io.safetensors), and convert back unchanged.

Logits must agree within |a - b| <= 1e-4 * max(|b|, 1e-2). Exit status 0 when every check passes
(or when torch is not installed: the check is then skipped), 1 otherwise.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures")
TO_SAFETENSORS = os.path.join(HERE, "pytorch_to_safetensors.py")
TO_PYTORCH = os.path.join(HERE, "safetensors_to_pytorch.py")

failures = []


def check(condition, message):
    print(("ok    " if condition else "FAIL  ") + message)
    if not condition:
        failures.append(message)
    return condition


def run(*arguments):
    """Runs a converter as a user would; returns its exit status and prints its output indented."""
    result = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    for line in (result.stdout + result.stderr).splitlines():
        print("      " + line)
    return result.returncode


def logits_close(actual, expected):
    import torch

    bound = 1e-4 * torch.clamp(expected.abs(), min=1e-2)
    return actual.shape == expected.shape and bool(((actual - expected).abs() <= bound).all())


def same_state(a, b):
    """Identical keys (in order), dtypes, shapes and values."""
    import torch

    if list(a.keys()) != list(b.keys()):
        return False
    return all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def read_safetensors(path):
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}


def same_safetensors(path_a, path_b):
    import torch

    (ta, ma), (tb, mb) = read_safetensors(path_a), read_safetensors(path_b)
    if set(ta) != set(tb) or not all(ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]) for k in ta):
        return False
    if set(ma) != set(mb):
        return False
    return all(json.loads(ma[k]) == json.loads(mb[k]) if k.startswith("envnet.") else ma[k] == mb[k] for k in ma)


def logits_of(model_class, state, input, **arguments):
    import torch

    net = model_class(**arguments)
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        return net(input)


def main():
    try:
        import torch
        import safetensors  # noqa: F401
    except ImportError as error:
        print(f"check_interop: skipped: {error.name or 'torch'} not installed (pip install 'torch==2.13.0+cpu' safetensors)")
        return 0
    torch.set_num_threads(1)
    sys.path.insert(0, HERE)
    from make_interop_fixture import InterchangeEnvNet, SeedEnvNet

    small = {"class_count": 5, "hidden_units": 16}
    with tempfile.TemporaryDirectory(prefix="envnet-interop-") as tmp:
        def path(name):
            return os.path.join(tmp, name)

        # PyTorch (seed layout) -> safetensors -> PyTorch.
        print("PyTorch -> safetensors -> PyTorch (interop_seed.pt)")
        original = torch.load(os.path.join(FIXTURES, "interop_seed.pt"), weights_only=True)
        io, _ = read_safetensors(os.path.join(FIXTURES, "interop_io.safetensors"))
        expected = io["logits"]
        check(logits_close(logits_of(SeedEnvNet, original, io["input"], **small), expected),
              "the committed .pt gives the committed PyTorch logits")
        check(run(TO_SAFETENSORS, os.path.join(FIXTURES, "interop_seed.pt"), path("seed.safetensors"),
                  "--class-names", "dog,rooster,pig,cow,frog") == 0, "pytorch_to_safetensors.py (layout detected)")
        check(same_safetensors(path("seed.safetensors"), os.path.join(FIXTURES, "interop_seed.safetensors")),
              "the conversion equals the committed interop_seed.safetensors (what the Swift test loads)")
        check(run(TO_PYTORCH, path("seed.safetensors"), path("seed.pt"), "--layout", "seed") == 0,
              "safetensors_to_pytorch.py --layout seed")
        back = torch.load(path("seed.pt"), weights_only=True)
        check(same_state(back, original), "the round trip keeps every tensor identical (keys, order, dtype, values)")
        back_logits = logits_of(SeedEnvNet, back, io["input"], **small)
        check(torch.equal(back_logits, logits_of(SeedEnvNet, original, io["input"], **small)),
              "the round trip gives identical PyTorch logits")
        check(logits_close(back_logits, expected), "... within 1e-4 of the committed logits")

        check(run(TO_PYTORCH, path("seed.safetensors"), path("seed-interchange.pt")) == 0,
              "safetensors_to_pytorch.py --layout interchange (seed variant)")
        interchange = torch.load(path("seed-interchange.pt"), weights_only=True)
        check(logits_close(logits_of(InterchangeEnvNet, interchange, io["input"], variant="seed", **small), expected),
              "the interchange-named state_dict gives the same logits")
        check(run(TO_SAFETENSORS, path("seed-interchange.pt"), path("seed-again.safetensors"),
                  "--class-names", "dog,rooster,pig,cow,frog") == 0 and
              same_safetensors(path("seed-again.safetensors"), path("seed.safetensors")),
              "interchange .pt -> safetensors gives the same file")

        # Swift -> PyTorch.
        print("Swift (EnvNet.save) -> PyTorch (interop_swift.safetensors)")
        swift_file = os.path.join(FIXTURES, "interop_swift.safetensors")
        swift_io, _ = read_safetensors(os.path.join(FIXTURES, "interop_swift_io.safetensors"))
        check(run(TO_PYTORCH, swift_file, path("swift.pt"), "--metadata-out", path("swift.json")) == 0,
              "safetensors_to_pytorch.py on a file written by Swift")
        with open(path("swift.json"), encoding="utf-8") as f:
            metadata = json.load(f)
        check(metadata["configuration"] == {"variant": "official", "classCount": 5, "hiddenUnits": 16, "dropoutProbability": 0.5}
              and metadata["class_names"] == ["dog", "rooster", "pig", "cow", "frog"],
              "the configuration and class names written by Swift are read")
        swift_state = torch.load(path("swift.pt"), weights_only=True)
        check(logits_close(logits_of(InterchangeEnvNet, swift_state, swift_io["input"], variant="official", **small),
                           swift_io["logits"]),
              "PyTorch computes Swift's logits within 1e-4")
        check(run(TO_PYTORCH, swift_file, path("swift-seed.pt"), "--layout", "seed", "--conv-rank", "4") == 0 and
              all(key in torch.load(path("swift-seed.pt"), weights_only=True) for key in ("conv1.0.weight", "conv1.1.num_batches_tracked", "fc5.0.weight")),
              "the seed layout names an official-variant state_dict too")
        check(run(TO_SAFETENSORS, path("swift.pt"), path("swift-again.safetensors"), "--class-names", path("swift.json")) == 0 and
              same_safetensors(path("swift-again.safetensors"), swift_file),
              "safetensors -> .pt -> safetensors reproduces Swift's file (tensors and metadata)")

        # Errors name the tensor.
        print("Errors")
        broken = dict(original)
        broken["conv3.1.running_var"] = torch.ones(49)
        torch.save(broken, path("broken.pt"))
        check(run(TO_SAFETENSORS, path("broken.pt"), path("broken.safetensors")) == 1,
              "a wrongly shaped tensor is refused (exit 1, names bn3.running_var)")

    if failures:
        print(f"check_interop: {len(failures)} check(s) failed")
        return 1
    print("check_interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
