#!/usr/bin/env python3
"""Writes the log-mel feature fixture and a small PyTorch log-mel CNN with its logits.

Usage: python3 Tools/make_logmel_fixture.py
Output: Tests/EnvNetModelTests/Fixtures/logmel.safetensors

torchaudio cannot be installed here, so its MelSpectrogram(sample_rate=22050, n_fft=1024,
win_length=1024, hop_length=512, n_mels=60, normalized=True) and AmplitudeToDB(top_db=80) are
rebuilt from independent pieces, in float64:
  power = |torch.stft(x, 1024, hop 512, periodic Hann, center=True, pad_mode="reflect")|^2 / sum(w^2)
  mel   = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=60, fmin=0, fmax=11025, htk=True, norm=None) @ power
  dB    = 10 log10(max(mel, 1e-10)), then max(dB, max over the segment - 80)
Deltas are torchaudio's compute_deltas(win_length=5, mode="replicate"): a conv1d with kernel
[-2, -1, 0, 1, 2] / 10 over the edge-replicated values, here of (dB - 40) / 20.

Tensors:
  filters                 [60, 513]  librosa's filter bank
  segment{k}.input        [20991]    synthetic audio (no recorded clip is committed)
  segment{k}.decibels     [60, 41]   the reference log-mel dB
  segment{k}.deltas       [60, 41]   deltas of (dB - 40) / 20
  clip.input              [54000]    a longer synthetic clip: segments start every 10240 samples
  clip.decibels           [S, 60, 41] each segment's dB
  model.*                 a log-mel CNN (fc 16, 5 classes) with random weights and BatchNorm statistics
  model.features          [2, 2, 60, 41] the network's input features (normalised dB and deltas)
  model.logits            [2, 5]     its logits in evaluation mode
Needs torch, librosa and safetensors (pip install 'torch==2.13.0+cpu' librosa safetensors).
"""
import math
import os

import librosa
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnvNetModelTests", "Fixtures", "logmel.safetensors")
RATE, FFT, HOP, BANDS, FRAMES = 22050, 1024, 512, 60, 41
LENGTH = FRAMES * HOP - 1  # 20991: the longest segment with 41 centred frames
SEGMENT_HOP = 10240

FILTERS = torch.tensor(librosa.filters.mel(sr=RATE, n_fft=FFT, n_mels=BANDS, fmin=0, fmax=RATE / 2, htk=True, norm=None),
                       dtype=torch.float64)


def decibels(samples):
    x = torch.tensor(samples, dtype=torch.float64)
    window = torch.hann_window(FFT, periodic=True, dtype=torch.float64)
    spectrum = torch.stft(x, n_fft=FFT, hop_length=HOP, win_length=FFT, window=window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    spectrum = spectrum / window.pow(2).sum().sqrt()
    mel = FILTERS @ spectrum.abs().pow(2)
    db = 10 * torch.log10(torch.clamp(mel, min=1e-10))
    return torch.maximum(db, db.max() - 80)


def deltas(values):
    padded = F.pad(values.unsqueeze(0), (2, 2), mode="replicate")
    kernel = torch.arange(-2, 3, dtype=values.dtype).view(1, 1, 5).repeat(values.shape[0], 1, 1) / 10
    return F.conv1d(padded, kernel, groups=values.shape[0]).squeeze(0)


def synthetic(generator, length, kind):
    t = np.arange(length) / RATE
    if kind == 0:  # a chirp over broadband noise
        sweep = np.sin(2 * math.pi * (200 * t + 4000 * t * t))
        return (0.5 * sweep + 0.05 * generator.standard_normal(length)).astype(np.float32)
    if kind == 1:  # tones and a click, very quiet noise: the 80 dB floor is reached
        tones = 0.3 * np.sin(2 * math.pi * 440 * t) + 0.1 * np.sin(2 * math.pi * 3000 * t)
        tones[length // 2] += 0.9
        return (tones + 1e-6 * generator.standard_normal(length)).astype(np.float32)
    if kind == 2:  # a burst in silence: centred frames reflect at both ends
        signal = np.zeros(length)
        start, stop = length // 3, length // 3 + 4000
        signal[start:stop] = 0.8 * generator.standard_normal(stop - start) * np.hanning(stop - start)
        return signal.astype(np.float32)
    # low-passed noise: the top bands hold nothing (as in 16 kHz recordings upsampled)
    noise = generator.standard_normal(length)
    smooth = np.convolve(noise, np.ones(8) / 8, mode="same")
    return (0.2 * smooth).astype(np.float32)


class LogMelCNN(nn.Module):
    def __init__(self, hidden, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 80, (57, 6), bias=False)
        self.bn1 = nn.BatchNorm2d(80)
        self.conv2 = nn.Conv2d(80, 80, (1, 3), bias=False)
        self.bn2 = nn.BatchNorm2d(80)
        self.fc3 = nn.Linear(240, hidden)
        self.bn3 = nn.BatchNorm1d(hidden)
        self.fc4 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), (4, 3), stride=(1, 3))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), (1, 3), stride=(1, 3))
        x = F.relu(self.bn3(self.fc3(x.flatten(1))))
        return self.fc4(x)


def main():
    generator = np.random.default_rng(18)
    tensors = {"filters": FILTERS.float()}
    features = []
    for kind in range(4):
        samples = synthetic(generator, LENGTH, kind)
        db = decibels(samples)
        assert db.shape == (BANDS, FRAMES), db.shape
        tensors[f"segment{kind}.input"] = torch.tensor(samples)
        tensors[f"segment{kind}.decibels"] = db.float()
        tensors[f"segment{kind}.deltas"] = deltas((db - 40) / 20).float()
        features.append(db)
    clip = synthetic(generator, 54000, 0)
    starts = list(range(0, len(clip) - LENGTH + 1, SEGMENT_HOP))
    tensors["clip.input"] = torch.tensor(clip)
    tensors["clip.decibels"] = torch.stack([decibels(clip[s:s + LENGTH]) for s in starts]).float()

    torch.manual_seed(18)
    model = LogMelCNN(16, 5).double()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2, model.bn3):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    model.eval()
    mean, std = -45.0, 18.0
    inputs = []
    for db in features[:2]:
        normalised = (db - mean) / std
        inputs.append(torch.stack([normalised, deltas(normalised)]))
    batch = torch.stack(inputs)
    with torch.no_grad():
        logits = model(batch)
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            tensors[f"model.{key}"] = value.float()
    tensors["model.logmel.mean"] = torch.tensor([mean], dtype=torch.float32)
    tensors["model.logmel.std"] = torch.tensor([std], dtype=torch.float32)
    tensors["model.logmel.segment_count"] = torch.tensor([100.0], dtype=torch.float32)
    tensors["model.features"] = batch.float()
    tensors["model.logits"] = logits.float()
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT)
    print(f"wrote {OUT}: {len(tensors)} tensors; clip segments {len(starts)}; "
          f"segment dB ranges {[(round(float(f.min()), 1), round(float(f.max()), 1)) for f in features]}")


if __name__ == "__main__":
    main()
