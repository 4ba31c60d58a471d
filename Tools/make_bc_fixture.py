#!/usr/bin/env python3
"""Writes Tests/EnvNetAudioTests/Fixtures/bc_gain.json.

`a_weight`, `compute_gain` and `mix` below follow the authors' BC-learning code (ICLR 2018,
"BC learning for sounds" repository, utils.py) for 16 kHz input: frames of 2048 with hop 1024,
periodic Hann window, power spectrum weighted by the A-weighting curve (dB, floored at -80),
summed per frame, floored at -80 dB; the gain is the maximum over frames.

The test signals are rebuilt bit-for-bit in Swift from the same formulas: sines, and noise from
a 64-bit LCG (Knuth's MMIX constants) whose top 53 bits give a uniform in [0, 1); every signal
is rounded to float32, as the network's inputs are.

Run from the package root:  python3 Tools/make_bc_fixture.py
"""
import json
import os

import numpy as np

FS = 16000
LENGTH = 24000


def a_weight(fs, n_fft, min_db=-80.0):
    freq = np.linspace(0, fs // 2, n_fft // 2 + 1)
    freq_sq = np.power(freq, 2)
    freq_sq[0] = 1.0
    weight = 2.0 + 20.0 * (2 * np.log10(12194) + 2 * np.log10(freq_sq)
                           - np.log10(freq_sq + 12194 ** 2)
                           - np.log10(freq_sq + 20.6 ** 2)
                           - 0.5 * np.log10(freq_sq + 107.7 ** 2)
                           - 0.5 * np.log10(freq_sq + 737.9 ** 2))
    return np.maximum(weight, min_db)


def compute_gain(sound, fs, min_db=-80.0):
    n_fft = 2048
    stride = n_fft // 2
    gain = []
    for i in range(0, len(sound) - n_fft + 1, stride):
        spec = np.fft.rfft(np.hanning(n_fft + 1)[:-1] * sound[i: i + n_fft])
        power_spec = np.abs(spec) ** 2
        a_weighted_spec = power_spec * np.power(10, a_weight(fs, n_fft) / 10)
        gain.append(np.sum(a_weighted_spec))
    gain = np.maximum(np.array(gain), np.power(10, min_db / 10))
    return 10 * np.log10(gain)


def mix(sound1, sound2, r, fs):
    gain1 = np.max(compute_gain(sound1, fs))
    gain2 = np.max(compute_gain(sound2, fs))
    t = 1.0 / (1 + np.power(10, (gain1 - gain2) / 20.) * (1 - r) / r)
    return t, (sound1 * t + sound2 * (1 - t)) / np.sqrt(t ** 2 + (1 - t) ** 2)


def lcg_uniforms(seed, count):
    state = seed
    values = []
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        values.append((state >> 11) * 2.0 ** -53)
    return np.array(values)


def signals():
    n = np.arange(LENGTH)
    burst = np.zeros(LENGTH)
    burst[10000:12000] = 0.9 * (2 * lcg_uniforms(2, 2000) - 1)
    return {
        "tone1k": 0.5 * np.sin(2 * np.pi * 1000 * n / FS),
        "tone100": 0.8 * np.sin(2 * np.pi * 100 * n / FS),
        "noise": 0.1 * (2 * lcg_uniforms(1, LENGTH) - 1),
        "burst": burst,
        "silence": np.zeros(LENGTH),
    }


def main():
    sounds = {name: s.astype(np.float32) for name, s in signals().items()}
    gains = {}
    for name, sound in sounds.items():
        frames = compute_gain(sound, FS)
        gains[name] = {"frames": [float(g) for g in frames], "gain": float(np.max(frames))}
    mixes = []
    for first, second, r in [("tone1k", "noise", 0.3), ("tone100", "burst", 0.8)]:
        p, mixed = mix(sounds[first], sounds[second], r, FS)
        mixes.append({"first": first, "second": second, "ratio": r, "proportion": float(p),
                      "head": [float(v) for v in mixed[10990:11010]], "headStart": 10990})
    fixture = {"sampleRate": FS, "length": LENGTH, "gains": gains, "mixes": mixes}
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EnvNetAudioTests",
                        "Fixtures", "bc_gain.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
    print(f"wrote {path}")
    for name, g in gains.items():
        print(f"  {name}: {g['gain']:.4f} dB over {len(g['frames'])} frames")


if __name__ == "__main__":
    main()
