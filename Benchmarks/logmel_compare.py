#!/usr/bin/env python3
"""Log-mel features, ours against PyTorch's in the same run: alternates `envnet-benchmark
--log-mel-only --json` with the peer of Benchmarks/logmel_peer.py (float32, what torchaudio
computes), on one thread and on all cores, and prints the medians and their ratios.

Usage: swift build -c release --product envnet-benchmark && python3 Benchmarks/logmel_compare.py [--rounds 5]
"""
import argparse
import json
import os
import subprocess
import time

import librosa
import torch

from logmel_peer import features

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "..", ".build", "release", "envnet-benchmark")


def peer(threads, repetitions=7):
    torch.set_num_threads(threads)
    mel = torch.tensor(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=60, fmin=0, fmax=11025, htk=True, norm=None))
    batch = torch.rand(64, 20991) * 2 - 1
    window = torch.hann_window(1024, periodic=True)
    features(batch, window, mel)
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        features(batch, window, mel)
        times.append(time.perf_counter() - start)
    return 64 / sorted(times)[len(times) // 2]


def median(values):
    return sorted(values)[len(values) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cores = os.cpu_count()
    ours_one, ours_all, torch_one, torch_all = [], [], [], []
    for _ in range(args.rounds):
        row = json.loads(subprocess.run([BINARY, "--log-mel-only", "--json"], check=True, capture_output=True, text=True).stdout)
        ours_one.append(row["segmentsPerSecondOneThread"])
        ours_all.append(row["segmentsPerSecondAllWorkers"])
        torch_one.append(peer(1))
        torch_all.append(peer(cores))
    print(f"segments/s, median of {args.rounds} alternating rounds (64 segments of 20991 samples each)")
    print(f"  one thread:     ours {median(ours_one):6.0f}   torch float32 {median(torch_one):6.0f}   ratio {median(ours_one) / median(torch_one):.2f}x")
    print(f"  {cores} threads:      ours {median(ours_all):6.0f}   torch float32 {median(torch_all):6.0f}   ratio {median(ours_all) / median(torch_all):.2f}x")


if __name__ == "__main__":
    main()
