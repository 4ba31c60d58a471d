#!/usr/bin/env python3
"""Formats, end to end: does training on FLAC/MP3/Ogg at 44.1/22.05/48 kHz match training on the
original 16 kHz WAV?

Takes 5 classes of the shared ESC-10 clips, converts each clip once with sox to one of FLAC, MP3 or
Ogg Vorbis at one of 44.1, 22.05 or 48 kHz (round robin over the 9 pairs), and writes two manifests
with the clips' ESC-50 folds and src_file groups: one for the converted clips, one for the original
WAV files. Then trains `envnet train` for --epochs epochs on each with 3 seeds and prints the fold-5
clip accuracies, their means and the seed-to-seed spread.

Usage: python3 Tools/format_experiment.py [--work /tmp/formats] [--epochs 30] [--seeds 1,2,3]
Needs sox (with libsox-fmt-all for MP3) and a release build (`swift build -c release`).
"""
import argparse
import csv
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "ESC-10-16k")
CLASSES = ["dog", "rooster", "rain", "sea_waves", "crackling_fire"]
FORMATS = ["flac", "mp3", "ogg"]
RATES = [44100, 22050, 48000]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/envnet-formats")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--envnet", default=os.path.join(ROOT, ".build", "release", "envnet"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    audio = os.path.join(args.work, "converted")
    os.makedirs(audio, exist_ok=True)

    with open(os.path.join(SHARED, "meta", "esc50.csv")) as handle:
        rows = [row for row in csv.DictReader(handle) if row["category"] in CLASSES]
    rows.sort(key=lambda row: row["filename"])
    converted, original = [], []
    for index, row in enumerate(rows):
        extension = FORMATS[index % 3]
        rate = RATES[(index // 3) % 3]
        name = os.path.splitext(row["filename"])[0] + f"-{rate}.{extension}"
        target = os.path.join(audio, name)
        if not os.path.exists(target):
            subprocess.run(["sox", "-G", os.path.join(SHARED, "audio", row["filename"]), "-r", str(rate), target], check=True)
        group = row["src_file"]
        converted.append(("converted/" + name, row["category"], row["fold"], group))
        source = os.path.relpath(os.path.join(SHARED, "audio", row["filename"]), args.work)
        original.append((source, row["category"], row["fold"], group))
    for name, entries in [("converted.csv", converted), ("original.csv", original)]:
        with open(os.path.join(args.work, name), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label", "fold", "group"])
            writer.writerows(entries)
    print(f"{len(rows)} clips of {len(CLASSES)} classes; formats and rates round robin", flush=True)

    results = {}
    for manifest in ["original.csv", "converted.csv"]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            output = os.path.join(args.work, "runs", f"{manifest[:-4]}-seed{seed}")
            subprocess.run(["rm", "-rf", output], check=True)
            command = [args.envnet, "train", "--data", os.path.join(args.work, manifest), "--fold", "5",
                       "--epochs", str(args.epochs), "--seed", str(seed), "--validate-every", "0",
                       "--cache", os.path.join(args.work, "cache"), "--output", output]
            print("$ " + " ".join(command), flush=True)
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(run.stdout + run.stderr)
            if seed == 1:
                print("\n".join(line for line in run.stderr.splitlines() if line.startswith(("dataset", "  "))), flush=True)
            accuracy = float(re.search(r"clip accuracy ([0-9.]+)%", run.stdout).group(1))
            results.setdefault(manifest, []).append(accuracy)
            print(f"{manifest} seed {seed}: {accuracy:.2f} %", flush=True)
    spreads = []
    for manifest, values in results.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0
        spreads.append(spread)
        print(f"{manifest}: {', '.join(f'{v:.2f}' for v in values)}; mean {statistics.mean(values):.2f} %, "
              f"standard deviation {spread:.2f}, range {max(values) - min(values):.2f}")
    difference = abs(statistics.mean(results["original.csv"]) - statistics.mean(results["converted.csv"]))
    print(f"difference of the means: {difference:.2f} points; seed-to-seed spread (larger standard deviation): {max(spreads):.2f}")


if __name__ == "__main__":
    main()
