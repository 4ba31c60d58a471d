#!/usr/bin/env python3
"""Runs `envnet bench` and the PyTorch peer alternately on this machine and prints one table.

Each round starts both programs as separate processes (so each peak RSS is its own); each process
warms up, then reports the median of --repetitions timed repetitions. The table gives the median
over rounds, the largest peak RSS, and our/peer ratios.

Usage (from the repository root):
  python3 Benchmarks/compare.py [--network envnet|envnet-v2] [--rounds 2] [--repetitions 5] [--batch-size 64] [--markdown] [--bf16-peers]
With --bf16-peers each round also runs `envnet bench --precision bf16` and the peer in its bf16 setups
(autocast with channels_last, eager and under torch.compile), and the table adds the ratios of our
fp32 and our bf16 against PyTorch's best bf16 figure of each row.
Needs a release build of envnet (built here if missing) and torch for the peer.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(command):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--network", choices=["envnet", "envnet-v2"], default="envnet")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--bf16-peers", action="store_true", help="also PyTorch bf16 autocast + channels_last, eager and compiled")
    args = parser.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "envnet"], cwd=ROOT, check=True, capture_output=True)
    ours_command = [os.path.join(ROOT, ".build", "release", "envnet"), "bench", "--json",
                    "--repetitions", str(args.repetitions), "--batch-size", str(args.batch_size), "--network", args.network]
    peer_command = [sys.executable, os.path.join(ROOT, "Benchmarks", "pytorch_peer.py"),
                    "--repetitions", str(args.repetitions), "--batch-size", str(args.batch_size), "--network", args.network]
    ours, peer = [], []
    bf16_setups = {"bf16 + channels_last": ["--precision", "bf16", "--channels-last"],
                   "bf16 + channels_last + compile": ["--precision", "bf16", "--channels-last", "--compile"]} if args.bf16_peers else {}
    bf16_runs = {name: [] for name in bf16_setups}
    ours_bf16 = []
    for round_index in range(args.rounds):
        print(f"round {round_index + 1}/{args.rounds}: envnet bench ...", file=sys.stderr)
        ours.append(run_json(ours_command))
        if args.bf16_peers:
            print(f"round {round_index + 1}/{args.rounds}: envnet bench --precision bf16 ...", file=sys.stderr)
            ours_bf16.append(run_json(ours_command + ["--precision", "bf16"]))
        print(f"round {round_index + 1}/{args.rounds}: PyTorch peer ...", file=sys.stderr)
        peer.append(run_json(peer_command))
        for name, flags in bf16_setups.items():
            print(f"round {round_index + 1}/{args.rounds}: PyTorch peer, {name} ...", file=sys.stderr)
            bf16_runs[name].append(run_json(peer_command + flags))

    def summary(runs):
        return {
            "training": statistics.median(r["trainingSamplesPerSecond"] for r in runs),
            "inference": statistics.median(r["inferenceWindowsPerSecond"] for r in runs),
            "memory": max(r["peakResidentBytes"] for r in runs),
        }

    a, b = summary(ours), summary(peer)
    v2 = args.network == "envnet-v2"
    rows = [
        (f"training step (samples/s, batch {args.batch_size})", f"{a['training']:.1f}", f"{b['training']:.1f}", a["training"] / b["training"], ">= 2" if v2 else ">= 3"),
        ("inference (1.5 s windows/s)", f"{a['inference']:.1f}", f"{b['inference']:.1f}", a["inference"] / b["inference"], ">= 3" if v2 else ">= 4"),
        ("peak RSS (MB)", f"{a['memory'] / 1e6:.0f}", f"{b['memory'] / 1e6:.0f}", a["memory"] / b["memory"], "<= 0.75"),
    ]
    machine = f"{cpu_model()}, {os.cpu_count()} cores; OpenBLAS kernels {ours[0].get('kernelFamily', '?')}; {peer[0]['implementation']}"
    if args.markdown:
        print(f"Machine: {machine}\n")
        print(f"| measurement | {'EnvNet-v2' if v2 else 'EnvNet'} (Swift) | PyTorch | ratio | target |")
        print("|---|---:|---:|---:|---|")
        for name, x, y, ratio, target in rows:
            print(f"| {name} | {x} | {y} | {ratio:.2f} | {target} |")
    else:
        print(machine)
        print(f"{'measurement':38} {'EnvNet':>10} {'PyTorch':>10} {'ratio':>7}  target")
        for name, x, y, ratio, target in rows:
            print(f"{name:38} {x:>10} {y:>10} {ratio:7.2f}  {target}")
    if bf16_setups:
        setups = {name: summary(runs) for name, runs in bf16_runs.items()}
        print("\nPyTorch's bf16 setups (medians over rounds):")
        for name, figures in setups.items():
            print(f"  {name:32} training {figures['training']:7.1f} samples/s  inference {figures['inference']:7.1f} windows/s  peak {figures['memory'] / 1e6:6.0f} MB")
        best_training = max(setups.values(), key=lambda f: f["training"])
        best_inference = max(setups.values(), key=lambda f: f["inference"])
        lowest_memory = min(f["memory"] for f in setups.values())
        c = summary(ours_bf16)
        print(f"  {'ours, bf16':32} training {c['training']:7.1f} samples/s  inference {c['inference']:7.1f} windows/s  peak {c['memory'] / 1e6:6.0f} MB")
        for label, figures in (("fp32", a), ("bf16", c)):
            print(f"ours ({label}) against PyTorch's best bf16: training {figures['training'] / best_training['training']:.2f}x (target >= 3), "
                  f"inference {figures['inference'] / best_inference['inference']:.2f}x (target >= 5), "
                  f"peak memory {figures['memory'] / lowest_memory:.2f}x (target <= 0.75)")
    print("\nper-layer times of envnet bench (ms, last round, training mode):")
    for layer in ours[-1]["layers"]:
        print(f"  {layer['name']:10} forward {layer['forwardMilliseconds']:8.2f}  backward {layer['backwardMilliseconds']:8.2f}")
    stages = ours[-1].get("inferenceStages", [])
    if stages:
        print("\ninference stages of envnet bench (ms, last round, evaluation mode):")
        for stage in stages:
            print(f"  {stage['name']:18} {stage['milliseconds']:8.2f}")


if __name__ == "__main__":
    main()
