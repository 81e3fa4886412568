// Reading speech for Whisper: a sound file (WAV, or any format libsndfile decodes) as float
// samples, mixed to mono (the mean of the channels) and resampled to 16 kHz with libsamplerate
// (SRC_SINC_BEST_QUALITY, the band-limited sinc converter). Part of tformer::audio: needs
// libsndfile and libsamplerate (link tformer::audio).
//
// A RIFF/WAVE file is checked before libsndfile decodes it, and refused with an io_error naming
// the file, the byte offset and the chunk or field: a file shorter than its 12-byte header, a
// RIFF size past the end of the file, a "RIFF" without "WAVE", a chunk header or chunk body cut
// by the end of the file (the RIFF size), no "fmt " chunk before the "data" chunk, a "fmt "
// chunk shorter than 16 bytes, zero channels or a zero sample rate, and no "data" chunk. Other
// formats (FLAC, AIFF, ...) are left to libsndfile. Whatever libsndfile refuses, or a file that
// yields fewer frames than it declares, is an io_error naming the file and libsndfile's reason;
// load_audio's errors (a sample rate it cannot resample, ...) name the file too.
// Samples are libsndfile's floats: integer PCM divided by 2^(bits - 1) (16-bit: x / 32768).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <samplerate.h>
#include <sndfile.h>

#include "../core/error.hpp"
#include "../io/mapped_file.hpp"

namespace tformer::audio {

/// @brief Decoded audio: interleaved samples [frames, channels] at sample_rate.
struct sound {
  std::vector<float> samples;  // [frames * channels], interleaved
  std::int64_t sample_rate = 0;
  std::int64_t channels = 0;
  std::int64_t frames() const noexcept { return channels > 0 ? static_cast<std::int64_t>(samples.size()) / channels : 0; }
};

namespace detail {

inline std::uint32_t le32(const std::byte* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 | static_cast<std::uint32_t>(p[2]) << 16 |
         static_cast<std::uint32_t>(p[3]) << 24;
}
inline std::uint16_t le16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(static_cast<unsigned>(p[0]) | static_cast<unsigned>(p[1]) << 8);
}
// A chunk id as text ("fmt ", "data"; other bytes as \xNN).
inline std::string fourcc(const std::byte* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c >= 32 && c < 127) {
      s += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    }
  }
  return s;
}

// The RIFF/WAVE rules of the file comment; bytes that do not start with "RIFF" are not checked.
inline void check_riff_wave(std::span<const std::byte> b, const std::string& name) {
  auto fail = [&](std::uint64_t at, const std::string& what) {
    throw io_error("tformer: WAV file '" + name + "' at byte " + std::to_string(at) + ": " + what);
  };
  if (b.size() >= 4 && std::memcmp(b.data(), "RIFF", 4) != 0) return;
  const std::uint64_t n = b.size();
  if (n < 12)
    fail(n, "truncated: the file ends (" + std::to_string(n) + " bytes) inside the 12-byte RIFF/WAVE header");
  const std::uint64_t riff_end = 8 + static_cast<std::uint64_t>(le32(b.data() + 4));
  if (riff_end > n)
    fail(4, "truncated: the RIFF size field says the file has " + std::to_string(riff_end) + " bytes, it has " +
                std::to_string(n));
  if (std::memcmp(b.data() + 8, "WAVE", 4) != 0)
    fail(8, "a RIFF file of form '" + fourcc(b.data() + 8) + "', not 'WAVE'");
  bool fmt = false;
  std::uint64_t pos = 12;
  while (pos < riff_end) {
    if (riff_end - pos < 8)
      fail(pos, "truncated: the RIFF data ends (at byte " + std::to_string(riff_end) + ") inside a chunk header");
    const std::string id = fourcc(b.data() + pos);
    const std::uint64_t size = le32(b.data() + pos + 4);
    if (size > riff_end - pos - 8)
      fail(pos, "truncated: chunk '" + id + "' declares " + std::to_string(size) + " bytes but " +
                    std::to_string(riff_end - pos - 8) + " remain in the RIFF data");
    const std::byte* body = b.data() + pos + 8;
    if (id == "fmt ") {
      if (size < 16) fail(pos + 4, "chunk 'fmt ' has " + std::to_string(size) + " bytes, fewer than the 16 of PCM's");
      if (le16(body + 2) == 0) fail(pos + 8 + 2, "field 'channels' of chunk 'fmt ' is 0");
      if (le32(body + 4) == 0) fail(pos + 8 + 4, "field 'sample rate' of chunk 'fmt ' is 0");
      fmt = true;
    } else if (id == "data") {
      if (!fmt) fail(pos, "chunk 'data' comes before any 'fmt ' chunk");
      return;
    }
    pos += 8 + size + (size & 1);  // chunks are padded to even sizes
  }
  fail(pos > n ? n : pos, fmt ? "no 'data' chunk" : "no 'fmt ' chunk and no 'data' chunk");
}

// libsndfile's virtual I/O on bytes in memory.
struct memory_io {
  std::span<const std::byte> bytes;
  sf_count_t pos = 0;
  static sf_count_t length(void* self) { return static_cast<sf_count_t>(static_cast<memory_io*>(self)->bytes.size()); }
  static sf_count_t seek(sf_count_t offset, int whence, void* self) {
    auto* m = static_cast<memory_io*>(self);
    const sf_count_t size = static_cast<sf_count_t>(m->bytes.size());
    sf_count_t to = whence == SEEK_SET ? offset : whence == SEEK_CUR ? m->pos + offset : size + offset;
    m->pos = std::clamp<sf_count_t>(to, 0, size);
    return m->pos;
  }
  static sf_count_t read(void* out, sf_count_t count, void* self) {
    auto* m = static_cast<memory_io*>(self);
    const sf_count_t size = static_cast<sf_count_t>(m->bytes.size());
    const sf_count_t n = std::clamp<sf_count_t>(count, 0, size - m->pos);
    if (n > 0) std::memcpy(out, m->bytes.data() + m->pos, static_cast<std::size_t>(n));
    m->pos += n;
    return n;
  }
  static sf_count_t write(const void*, sf_count_t, void*) { return 0; }
  static sf_count_t tell(void* self) { return static_cast<memory_io*>(self)->pos; }
};

}  // namespace detail

/// @brief Decodes a sound file held in memory; name names it in messages (see the file comment).
inline sound decode_sound(std::span<const std::byte> bytes, const std::string& name) {
  detail::check_riff_wave(bytes, name);
  detail::memory_io io{bytes, 0};
  SF_VIRTUAL_IO v{&detail::memory_io::length, &detail::memory_io::seek, &detail::memory_io::read,
                  &detail::memory_io::write, &detail::memory_io::tell};
  SF_INFO info{};
  SNDFILE* f = sf_open_virtual(&v, SFM_READ, &info, &io);
  if (!f) throw io_error("tformer: cannot decode sound file '" + name + "': " + sf_strerror(nullptr));
  struct closer {
    SNDFILE* f;
    ~closer() { sf_close(f); }
  } close{f};
  if (info.channels < 1 || info.samplerate < 1 || info.frames < 0)
    throw io_error("tformer: sound file '" + name + "' declares " + std::to_string(info.channels) + " channels at " +
                   std::to_string(info.samplerate) + " Hz");
  // an uncompressed frame takes at least one byte: more frames than bytes is a corrupt header
  // (compressed formats such as FLAC or ADPCM may hold more frames than bytes)
  const int sub = info.format & SF_FORMAT_SUBMASK;
  const bool uncompressed = sub == SF_FORMAT_PCM_S8 || sub == SF_FORMAT_PCM_U8 || sub == SF_FORMAT_PCM_16 ||
                            sub == SF_FORMAT_PCM_24 || sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_FLOAT ||
                            sub == SF_FORMAT_DOUBLE;
  if (uncompressed && static_cast<std::uint64_t>(info.frames) > bytes.size())
    throw io_error("tformer: sound file '" + name + "' declares " + std::to_string(info.frames) + " frames in " +
                   std::to_string(bytes.size()) + " bytes");
  constexpr std::uint64_t max_samples = std::uint64_t{1} << 32;  // 16 GiB of floats
  if (static_cast<std::uint64_t>(info.frames) * static_cast<std::uint64_t>(info.channels) > max_samples)
    throw io_error("tformer: sound file '" + name + "' declares " + std::to_string(info.frames) + " frames of " +
                   std::to_string(info.channels) + " channels, more than tformer reads at once (" +
                   std::to_string(max_samples) + " samples)");
  sf_command(f, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);
  sound s;
  s.sample_rate = info.samplerate;
  s.channels = info.channels;
  try {
    s.samples.resize(static_cast<std::size_t>(info.frames) * static_cast<std::size_t>(info.channels));
  } catch (const std::bad_alloc&) {
    throw io_error("tformer: sound file '" + name + "': out of memory for its " + std::to_string(info.frames) + " frames of " +
                   std::to_string(info.channels) + " channels");
  }
  const sf_count_t got = info.frames > 0 ? sf_readf_float(f, s.samples.data(), info.frames) : 0;
  if (got != info.frames)
    throw io_error("tformer: sound file '" + name + "' declares " + std::to_string(info.frames) + " frames but " +
                   std::to_string(got) + " could be read" + (sf_error(f) ? std::string(": ") + sf_strerror(f) : std::string()));
  return s;
}

/// @brief Decodes the sound file at path (see the file comment).
inline sound read_sound(const std::filesystem::path& path) {
  const io::mapped_file m(path);
  return decode_sound(m.bytes(), m.path());
}

/// @brief The mean of the channels of s, [frames].
inline std::vector<float> mix_to_mono(const sound& s) {
  if (s.channels == 1) return s.samples;
  std::vector<float> out(static_cast<std::size_t>(s.frames()));  // [frames]
  for (std::int64_t t = 0; t < s.frames(); ++t) {
    double sum = 0;
    for (std::int64_t c = 0; c < s.channels; ++c) sum += s.samples[static_cast<std::size_t>(t * s.channels + c)];
    out[static_cast<std::size_t>(t)] = static_cast<float>(sum / static_cast<double>(s.channels));
  }
  return out;
}

/// @brief Mono samples x at rate `from` resampled to rate `to` with libsamplerate's
/// SRC_SINC_BEST_QUALITY (src_simple); x itself when the rates agree. Throws value_error for
/// rates whose ratio libsamplerate cannot take (outside 1/256 .. 256), io_error for its failures.
inline std::vector<float> resample(std::span<const float> x, std::int64_t from, std::int64_t to) {
  if (from < 1 || to < 1 || static_cast<double>(to) / static_cast<double>(from) > 256.0 ||
      static_cast<double>(from) / static_cast<double>(to) > 256.0)
    throw value_error("tformer::audio::resample: cannot resample from " + std::to_string(from) + " Hz to " +
                      std::to_string(to) + " Hz (rates must be positive, their ratio within 1/256 .. 256)");
  if (from == to || x.empty()) return std::vector<float>(x.begin(), x.end());
  const double ratio = static_cast<double>(to) / static_cast<double>(from);
  std::vector<float> y(static_cast<std::size_t>(std::ceil(static_cast<double>(x.size()) * ratio)) + 16);  // [frames out]
  SRC_DATA d{};
  d.data_in = x.data();
  d.data_out = y.data();
  d.input_frames = static_cast<long>(x.size());
  d.output_frames = static_cast<long>(y.size());
  d.src_ratio = ratio;
  if (const int err = src_simple(&d, SRC_SINC_BEST_QUALITY, 1); err != 0)
    throw io_error(std::string("tformer::audio::resample: libsamplerate: ") + src_strerror(err));
  y.resize(static_cast<std::size_t>(d.output_frames_gen));
  return y;
}

/// @brief What Whisper takes: the file at path as mono samples at `rate` (16 kHz). Every error
/// names the file: read_sound's io_errors; an io_error for a sample rate that cannot be resampled
/// to `rate` (a ratio outside 1/256 .. 256), for libsamplerate's failures and for running out of
/// memory; a value_error for a `rate` below 1.
inline std::vector<float> load_audio(const std::filesystem::path& path, std::int64_t rate = 16000) {
  const std::string name = path.string();
  if (rate < 1)
    throw value_error("tformer::audio::load_audio: cannot load sound file '" + name + "' at " + std::to_string(rate) +
                      " Hz (the rate must be positive)");
  const sound s = read_sound(path);
  const double ratio = static_cast<double>(rate) / static_cast<double>(s.sample_rate);
  if (ratio > 256.0 || ratio < 1.0 / 256.0)
    throw io_error("tformer: sound file '" + name + "' has a sample rate of " + std::to_string(s.sample_rate) +
                   " Hz, which cannot be resampled to " + std::to_string(rate) + " Hz (libsamplerate takes ratios within 1/256 .. 256)");
  try {
    return resample(mix_to_mono(s), s.sample_rate, rate);
  } catch (const io_error& e) {
    throw io_error("tformer: sound file '" + name + "': " + e.what());
  } catch (const std::bad_alloc&) {
    throw io_error("tformer: sound file '" + name + "': out of memory resampling its " + std::to_string(s.frames()) +
                   " frames from " + std::to_string(s.sample_rate) + " Hz to " + std::to_string(rate) + " Hz");
  }
}

}  // namespace tformer::audio
