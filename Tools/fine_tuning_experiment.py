#!/usr/bin/env python3
"""Fine-tuning against training from scratch, on synthetic classes.

1. `envnet synth` writes the 10 synthetic classes (40 clips each, 5 s at 44.1 kHz).
2. A model is trained on 5 of them (siren, engine, rain, door_knock, chirping_birds) for
   --pretrain-epochs epochs.
3. On the 5 others (clock_tick, church_bells, wind, crackling_fire, mains_hum), with only
   --train-clips clips per class to train on (folds 1-4) and the rest held out (fold 5), the same
   network is trained for --epochs epochs twice per seed: fine-tuned from step 2's model with the
   front end frozen (`--init-from ... --freeze-through pool2`), and from scratch.

It prints the held-out accuracies and exits non-zero unless the fine-tuned mean beats the
from-scratch mean by at least --margin points.

Usage: python3 Tools/fine_tuning_experiment.py [--work /tmp/envnet-fine-tuning] [--seeds 1,2,3]
Needs a release build (`swift build -c release`).
"""
import argparse
import csv
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN = ["siren", "engine", "rain", "door_knock", "chirping_birds"]
NEW = ["clock_tick", "church_bells", "wind", "crackling_fire", "mains_hum"]


def run(command):
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stdout + result.stderr)
    return result.stdout


def accuracy(output):
    return float(re.search(r"clip accuracy ([0-9.]+)%", output).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/envnet-fine-tuning")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-clips", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--margin", type=float, default=10)
    parser.add_argument("--envnet", default=os.path.join(ROOT, ".build", "release", "envnet"))
    args = parser.parse_args()
    envnet, work = args.envnet, args.work
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "synthetic")
    cache = os.path.join(work, "cache")
    if not os.path.exists(os.path.join(data, "meta", "esc50.csv")):
        run([envnet, "synth", "--output", data, "--clips-per-class", "40", "--seed", "7"])
    with open(os.path.join(data, "meta", "esc50.csv")) as handle:
        rows = list(csv.DictReader(handle))

    def write_manifest(name, classes, fold_of):
        per_class = {}
        with open(os.path.join(data, name), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "fold", "group"])
            for row in sorted(rows, key=lambda r: r["filename"]):
                if row["category"] in classes:
                    index = per_class.setdefault(row["category"], 0)
                    per_class[row["category"]] += 1
                    writer.writerow(["audio/" + row["filename"], row["category"], fold_of(index), row["src_file"]])
        return os.path.join(data, name)

    pretrain = write_manifest("pretrain.csv", PRETRAIN, lambda index: index % 5 + 1)
    new = write_manifest("new.csv", NEW, lambda index: index % 4 + 1 if index < args.train_clips else 5)

    base = os.path.join(work, "pretrained")
    if not os.path.exists(os.path.join(base, "model.safetensors")):
        subprocess.run(["rm", "-rf", base], check=True)
        out = run([envnet, "train", "--data", pretrain, "--epochs", str(args.pretrain_epochs), "--validate-every", "0",
                   "--seed", "100", "--cache", cache, "--output", base])
        print(f"pretrained on {', '.join(PRETRAIN)}: {accuracy(out):.2f} % on their fold 5", flush=True)
    common = ["--data", new, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--validate-every", "0",
              "--cache", cache]
    results = {"fine-tuned": [], "from scratch": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for kind in results:
            output = os.path.join(work, f"{kind.replace(' ', '-')}-seed{seed}")
            subprocess.run(["rm", "-rf", output], check=True)
            extra = ["--init-from", os.path.join(base, "model.safetensors"), "--freeze-through", "pool2"] if kind == "fine-tuned" else []
            value = accuracy(run([envnet, "train"] + common + ["--seed", str(seed), "--output", output] + extra))
            results[kind].append(value)
            print(f"{kind}, seed {seed}: {value:.2f} %", flush=True)
    means = {kind: statistics.mean(values) for kind, values in results.items()}
    for kind, values in results.items():
        print(f"{kind}: {', '.join(f'{v:.2f}' for v in values)}; mean {means[kind]:.2f} %")
    gain = means["fine-tuned"] - means["from scratch"]
    print(f"fine-tuning gains {gain:.2f} points (required: {args.margin})")
    sys.exit(0 if gain >= args.margin else 1)


if __name__ == "__main__":
    main()
