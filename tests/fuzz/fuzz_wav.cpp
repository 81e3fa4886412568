// libFuzzer target for sound files (audio/wav.hpp), on bytes in memory: the RIFF/WAVE checks and
// libsndfile's decoder behind them (decode_sound, what read_sound runs on its mapped file); an
// accepted sound has as many samples as frames x channels, mixes to mono, and resamples to
// 16 kHz (short inputs only: resampling is slow under the sanitizers).
//
// Build and run (Debian's clang; not part of the CMake build):
//   clang++ -std=c++20 -O1 -g -march=native -fsanitize=fuzzer,address,undefined \
//       -fno-sanitize-recover=undefined -Iinclude -isystem /usr/include/eigen3 \
//       tests/fuzz/fuzz_wav.cpp -o /tmp/fuzz_wav -lsndfile -lsamplerate
//   mkdir -p /tmp/wav_corpus && cp tests/data/audio/*.wav /tmp/wav_corpus/
//   /tmp/fuzz_wav -max_total_time=120 -max_len=65536 -rss_limit_mb=2048 /tmp/wav_corpus
// fuzz-link: -lsndfile -lsamplerate
// fuzz-seeds: tests/data/audio/*.wav
#include <tformer/audio/wav.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  tformer::audio::sound s;
  try {
    s = tformer::audio::decode_sound(input, "<fuzz input>");
  } catch (const tformer::io_error&) {
    return 0;  // rejected: the only acceptable failure
  }
  require(s.channels >= 1 && s.sample_rate >= 1);
  require(s.samples.size() == static_cast<std::size_t>(s.frames()) * static_cast<std::size_t>(s.channels));
  const auto mono = tformer::audio::mix_to_mono(s);
  require(static_cast<std::int64_t>(mono.size()) == s.frames());
  if (mono.size() <= 4096) {
    try {
      (void)tformer::audio::resample(mono, s.sample_rate, 16000);
    } catch (const tformer::error&) {
      // a rate resample does not take (outside 1/256 .. 256 of 16 kHz): a typed refusal
    }
  }
  return 0;
}
