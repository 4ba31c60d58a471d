#!/usr/bin/env bash
# Writes the format fixtures of Tests/EnvNetAudioTests/Fixtures/formats: one 0.25 s stereo clip
# (440 Hz left, 660 Hz right, half scale, 16-bit, 22.05 kHz) as WAV and converted by sox to FLAC,
# MP3, Ogg Vorbis, AIFF, AIFC, CAF and W64, and by opusenc to Opus (48 kHz, the only Opus rate).
# sox and opus-tools are independent of libsndfile's decoders, which the tests check against the WAV.
# Needs: apt-get install sox libsox-fmt-all opus-tools
set -euo pipefail
out="$(dirname "$0")/../Tests/EnvNetAudioTests/Fixtures/formats"
mkdir -p "$out"
cd "$out"
sox -n -r 22050 -b 16 -c 2 tone.wav synth 0.25 sine 440 sine 660 gain -6
for extension in flac mp3 ogg aiff aifc caf w64; do sox tone.wav "tone.$extension"; done
opusenc --quiet tone.wav tone.opus
ls -l
