#!/usr/bin/env python3
"""Writes Tests/EnvNetAudioTests/Fixtures/resampler_44100_16000.json.

The reference output comes from scipy.signal.resample_poly, given the same Kaiser-windowed
sinc prototype that EnvNetAudio's Resampler designs (scipy.signal.firwin with a Kaiser window;
pass band to 0.9 and stop band from 1.0 of the lower Nyquist frequency, 110 dB), so the Swift
polyphase implementation is checked against an independent one. The input is 0.25 s of a
deterministic multi-tone signal plus noise at 44.1 kHz, stored as float32 values.

Run from the package root:  python3 Tools/make_resampler_fixture.py
"""
import json
import math
import os

import numpy as np
from scipy.signal import firwin, resample_poly

INPUT_RATE, OUTPUT_RATE = 44100, 16000
PASSBAND, STOPBAND, ATTENUATION = 0.9, 1.0, 110.0


def design(input_rate, output_rate):
    g = math.gcd(input_rate, output_rate)
    up, down = output_rate // g, input_rate // g
    upsampled = input_rate * up
    lower_nyquist = min(input_rate, output_rate) / 2
    passband, stopband = PASSBAND * lower_nyquist, STOPBAND * lower_nyquist
    cutoff = (passband + stopband) / 2
    beta = 0.1102 * (ATTENUATION - 8.7)
    order = (ATTENUATION - 7.95) / (2.285 * 2 * math.pi * (stopband - passband) / upsampled)
    half = math.ceil(order / 2)
    taps = firwin(2 * half + 1, cutoff, window=("kaiser", beta), fs=upsampled)
    return up, down, half, beta, taps


def main():
    up, down, half, beta, taps = design(INPUT_RATE, OUTPUT_RATE)
    n = INPUT_RATE // 4
    t = np.arange(n) / INPUT_RATE
    rng = np.random.RandomState(1234)
    signal = (0.30 * np.sin(2 * np.pi * 440 * t + 0.1)
              + 0.20 * np.sin(2 * np.pi * 3150 * t + 1.3)
              + 0.15 * np.sin(2 * np.pi * 6900 * t + 2.0)
              + 0.15 * np.sin(2 * np.pi * 9500 * t + 0.7)    # above the new Nyquist
              + 0.10 * np.sin(2 * np.pi * 17000 * t + 0.4)   # above the new Nyquist
              + 0.05 * rng.standard_normal(n))
    signal = signal.astype(np.float32)
    output = resample_poly(signal.astype(np.float64), up, down, window=taps)
    centre = (taps * up)[half - 5: half + 6]
    fixture = {
        "description": "scipy.signal.resample_poly reference, see Tools/make_resampler_fixture.py",
        "inputRate": INPUT_RATE,
        "outputRate": OUTPUT_RATE,
        "up": up,
        "down": down,
        "halfLength": half,
        "beta": beta,
        "centreTaps": [float(v) for v in centre],
        "input": [float(f"{v:.9g}") for v in signal],
        "output": [round(float(v), 7) for v in output],
    }
    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EnvNetAudioTests",
                        "Fixtures", "resampler_44100_16000.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"wrote {path}: {len(signal)} -> {len(output)} samples, half length {half}")


if __name__ == "__main__":
    main()
