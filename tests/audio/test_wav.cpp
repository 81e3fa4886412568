// Sound files (audio/wav.hpp): the committed espeak-ng WAVs decode to libsndfile's floats (16-bit
// PCM / 32768); the 22.05 kHz one resamples to 16 kHz with the length libsamplerate gives; stereo
// mixes to the mean; and truncated or malformed WAVs are io_errors naming the file, the byte
// offset and the chunk or field; every error of load_audio (a rate it cannot resample, a missing
// or malformed file) names the file.
#include <tformer/audio.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace fs = std::filesystem;
using namespace tformer;

namespace {

const std::string data_dir = TFORMER_TEST_DATA_DIR;

std::vector<std::uint8_t> file_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

// A PCM 16-bit WAV of these samples, channels and rate, built field by field.
std::vector<std::uint8_t> wav(const std::vector<std::int16_t>& s, int channels, int rate) {
  std::vector<std::uint8_t> b;
  auto le = [&](std::uint32_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto tag = [&](const char* t) {  // (push_back: g++ 12 reports a false -Wstringop-overflow on insert)
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(t[i]));
  };
  const auto data = static_cast<std::uint32_t>(2 * s.size());
  tag("RIFF"), le(36 + data, 4), tag("WAVE");
  tag("fmt "), le(16, 4), le(1, 2), le(static_cast<std::uint32_t>(channels), 2), le(static_cast<std::uint32_t>(rate), 4);
  le(static_cast<std::uint32_t>(rate * channels * 2), 4), le(static_cast<std::uint32_t>(channels * 2), 2), le(16, 2);
  tag("data"), le(data, 4);
  for (auto x : s) le(static_cast<std::uint16_t>(x), 2);
  return b;
}

fs::path write_file(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / ("tformer_test_wav_" + name + ".wav");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

void require_error(const std::string& name, const std::vector<std::uint8_t>& bytes, const std::vector<std::string>& words) {
  const fs::path p = write_file(name, bytes);
  try {
    (void)audio::read_sound(p);
    FAIL("no error for case '" << name << "'");
  } catch (const io_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    for (const auto& w : words) CHECK(msg.find(w) != std::string::npos);
  }
  fs::remove(p);
}

}  // namespace

TEST_CASE("wav: the espeak-ng files decode and resample") {
  const auto raw = file_bytes(data_dir + "/audio/espeak_16k.wav");
  const auto s = audio::read_sound(data_dir + "/audio/espeak_16k.wav");
  CHECK(s.sample_rate == 16000);
  CHECK(s.channels == 1);
  REQUIRE(static_cast<std::size_t>(s.frames()) == (raw.size() - 44) / 2);
  for (std::size_t i = 0; i < s.samples.size(); i += 97) {
    std::int16_t v;
    std::memcpy(&v, raw.data() + 44 + 2 * i, 2);
    REQUIRE(s.samples[i] == static_cast<float>(v) / 32768.0f);
  }
  CHECK(audio::load_audio(data_dir + "/audio/espeak_16k.wav") == s.samples);  // 16 kHz: as it is

  const auto t = audio::read_sound(data_dir + "/audio/espeak_22k.wav");
  CHECK(t.sample_rate == 22050);
  const auto r = audio::load_audio(data_dir + "/audio/espeak_22k.wav");
  const double want = static_cast<double>(t.frames()) * 16000.0 / 22050.0;
  CHECK(std::abs(static_cast<double>(r.size()) - want) <= 1.0);
  CHECK_THROWS_AS(audio::resample(r, 16000, 0), value_error);
}

TEST_CASE("wav: stereo mixes to the mean") {
  const auto p = write_file("stereo", wav({1000, 3000, -2000, 0}, 2, 8000));
  const auto s = audio::read_sound(p);
  CHECK(s.channels == 2);
  const auto m = audio::mix_to_mono(s);
  REQUIRE(m.size() == 2);
  CHECK(m[0] == 2000.0f / 32768.0f);
  CHECK(m[1] == -1000.0f / 32768.0f);
  fs::remove(p);
}

TEST_CASE("wav: truncated and malformed files are io_errors naming the file, the offset and the chunk") {
  const auto good = wav({1, 2, 3, 4, 5, 6, 7, 8}, 1, 16000);  // 44 + 16 bytes
  // every cut of the file
  for (std::size_t n = 0; n < good.size(); ++n) {
    const std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    require_error("cut" + std::to_string(n), cut, {"'"});
  }
  // the data chunk cut: the RIFF size names the missing bytes; with the RIFF size fixed, the chunk does
  {
    std::vector<std::uint8_t> cut(good.begin(), good.end() - 6);
    require_error("cut_data", cut, {"at byte 4:", "truncated", "RIFF size"});
    put32(cut, 4, static_cast<std::uint32_t>(cut.size() - 8));
    require_error("cut_chunk", cut, {"at byte 36:", "truncated", "chunk 'data' declares 16 bytes but 10 remain"});
  }
  {
    auto b = good;
    std::memcpy(b.data() + 8, "AVI ", 4);
    require_error("form", b, {"at byte 8:", "'AVI '", "not 'WAVE'"});
  }
  {
    auto b = good;
    put32(b, 16, 12);  // fmt size 12
    require_error("fmt_size", b, {"at byte 16:", "'fmt ' has 12 bytes"});
  }
  {
    auto b = good;
    b[22] = 0;  // channels
    require_error("channels", b, {"at byte 22:", "'channels'"});
  }
  {
    auto b = good;
    put32(b, 24, 0);  // sample rate
    require_error("rate", b, {"at byte 24:", "'sample rate'"});
  }
  {
    auto b = good;
    std::memcpy(b.data() + 12, "junk", 4);  // no fmt chunk before data
    require_error("no_fmt", b, {"at byte 36:", "before any 'fmt '"});
  }
  {
    auto b = good;
    std::memcpy(b.data() + 36, "dat\x01", 4);  // no data chunk
    require_error("no_data", b, {"at byte 60:", "no 'data' chunk"});
  }
  {
    auto b = good;
    b[20] = 0x55;  // format tag 0x55 (MP3): libsndfile refuses it
    require_error("codec", b, {"cannot decode"});
  }
  {
    std::vector<std::uint8_t> b = {'n', 'o', 't', ' ', 'a', ' ', 's', 'o', 'u', 'n', 'd'};
    require_error("garbage", b, {"cannot decode"});
  }
  CHECK_THROWS_AS(audio::read_sound(fs::temp_directory_path() / "tformer_no_such_file.wav"), io_error);
}

TEST_CASE("wav: every load_audio error names the file") {
  auto message = [](const fs::path& p, std::int64_t rate = 16000) {
    try {
      (void)audio::load_audio(p, rate);
    } catch (const io_error& e) {
      return std::string(e.what());
    }
    return std::string("<no io_error>");
  };
  auto names = [](const std::string& msg, const fs::path& p) {  // msg holds 'p'
    INFO(msg);
    std::string quoted(1, '\'');  // (appended: g++ 12 reports a false -Wstringop-overflow on "'" + s)
    quoted += p.string();
    quoted += '\'';
    return msg.find(quoted) != std::string::npos;
  };
  // sample rates libsndfile reads but libsamplerate cannot bring to 16 kHz (ratios past 256)
  for (const int rate : {40, 62, 4200000}) {
    const auto p = write_file("rate" + std::to_string(rate), wav({100, -100, 200, -200}, 1, rate));
    REQUIRE(audio::read_sound(p).sample_rate == rate);
    const auto msg = message(p);
    CHECK(names(msg, p));
    CHECK(msg.find(std::to_string(rate) + " Hz") != std::string::npos);
    CHECK(msg.find("16000 Hz") != std::string::npos);
    fs::remove(p);
  }
  {  // 62.5 Hz -> 16 kHz is exactly 256: resampled
    const auto p = write_file("rate8000", wav({100, -100, 200, -200}, 1, 8000));
    CHECK(audio::load_audio(p, 2048000).size() >= 4 * 255);
    CHECK(names(message(p, 2048001), p));  // just past 256
    // a target rate below 1: value_error naming the file
    try {
      (void)audio::load_audio(p, 0);
      FAIL("no error for rate 0");
    } catch (const value_error& e) {
      CHECK(names(e.what(), p));
    }
    fs::remove(p);
  }
  // a missing file, a directory and a malformed file
  const auto missing = fs::temp_directory_path() / "tformer_no_such_file.wav";
  CHECK(names(message(missing), missing));
  CHECK(names(message(fs::temp_directory_path()), fs::temp_directory_path()));
  const auto bad = write_file("garbage_load", {'n', 'o', 't', ' ', 'a', ' ', 's', 'o', 'u', 'n', 'd'});
  CHECK(names(message(bad), bad));
  fs::remove(bad);
}
