#!/usr/bin/env python3
"""The PyTorch peer of envnet-benchmark's log-mel row: segments per second of the log-mel CNN's
features (torchaudio's MelSpectrogram + AmplitudeToDB, rebuilt from torch.stft and librosa's filter
bank as in Tools/make_logmel_fixture.py), on 64 segments of 20991 samples, batched, float32 (what
torchaudio computes) and float64.

Usage: python3 Benchmarks/logmel_peer.py [--threads N] [--repetitions R]
"""
import argparse
import os
import time

import librosa
import torch


def features(batch, window, filters):
    spectrum = torch.stft(batch, n_fft=1024, hop_length=512, win_length=1024, window=window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    spectrum = spectrum / window.pow(2).sum().sqrt()
    mel = filters @ spectrum.abs().pow(2)
    db = 10 * torch.log10(torch.clamp(mel, min=1e-10))
    top = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, top - 80)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mel = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=60, fmin=0, fmax=11025, htk=True, norm=None)
    for dtype in (torch.float32, torch.float64):
        batch = torch.rand(64, 20991, dtype=dtype) * 2 - 1
        window = torch.hann_window(1024, periodic=True, dtype=dtype)
        filters = torch.tensor(mel, dtype=dtype)
        features(batch, window, filters)
        times = []
        for _ in range(args.repetitions):
            start = time.perf_counter()
            out = features(batch, window, filters)
            times.append(time.perf_counter() - start)
        assert out.shape == (64, 60, 41)
        median = sorted(times)[len(times) // 2]
        print(f"torch {torch.__version__} {str(dtype).split('.')[-1]}, {args.threads} threads: {64 / median:.0f} segments/s")


if __name__ == "__main__":
    main()
