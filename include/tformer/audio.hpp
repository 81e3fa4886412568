// tformer::audio: speech input for speech models (Whisper). Link the tformer::audio target
// (libsndfile, libsamplerate). Not included by tformer.hpp: the core needs neither library.
//   audio/log_mel.hpp  Whisper's log-mel front end (Eigen only; also part of the core)
//   audio/wav.hpp      sound files as mono float samples, resampled to 16 kHz
#pragma once

#include "tformer.hpp"
#include "audio/log_mel.hpp"
#include "audio/wav.hpp"
