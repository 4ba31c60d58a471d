// libsndfile (LGPL-2.1, linked dynamically): FLAC, Ogg Vorbis, Opus, MP3, AIFF/AIFC, CAF and W64
// decoding for EnvNetAudio. WAV stays on the package's own reader.
#include <sndfile.h>
