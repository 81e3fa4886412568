// Whisper's log-mel front end (audio/log_mel.hpp) against transformers' WhisperFeatureExtractor on
// one second of a synthetic signal with a silent tail (tools/make_whisper_fixtures.py log_mel):
// every value within 1e-4; the Slaney filters' known properties; bad options and short inputs.
#include <tformer/audio/log_mel.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

TEST_CASE("log_mel: matches WhisperFeatureExtractor within 1e-4") {
  io::safetensors_file f(std::string(TFORMER_TEST_DATA_DIR) + "/whisper_log_mel.case.safetensors");
  const auto config = nlohmann::json::parse(f.metadata().at("config"));
  const auto audio = f.load<float>("audio");     // [16000]
  const auto want = f.load<float>("features");   // [80, 100]
  audio::log_mel_options o;
  o.n_samples = config.at("n_samples").get<std::int64_t>();
  REQUIRE(o.n_samples == 16000);
  const auto got = audio::log_mel_spectrogram(std::span<const float>(audio.data(), static_cast<std::size_t>(audio.numel())), o);
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) worst = std::max(worst, double(std::fabs(got.data()[i] - want.data()[i])));
  INFO("max |tformer - transformers| = " << worst);
  CHECK(worst < 1e-4);

  // cutting: a longer input gives the features of its first n_samples
  std::vector<float> longer(audio.data(), audio.data() + audio.numel());
  longer.resize(20000, 0.5f);
  const auto cut = audio::log_mel_spectrogram(longer, o);
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(cut.data()[i] == got.data()[i]);
}

TEST_CASE("log_mel: Slaney filters, shapes and errors") {
  const auto w = audio::mel_filters();  // [80, 201]
  REQUIRE(w.size() == 80u * 201u);
  // Slaney normalisation: each triangle's area in Hz is 1 (2 / width x height 1 x width / 2)
  for (int m = 0; m < 80; ++m) {
    double area = 0;
    for (int k = 0; k < 201; ++k) area += w[static_cast<std::size_t>(m * 201 + k)] * 40.0;  // 40 Hz per bin
    CHECK(area == Approx(1.0).margin(0.35));  // coarse bins: the low filters span a bin or two
  }
  // 30 s by default: 3000 frames, all silence -> (log10(1e-10) + 4) / 4
  std::vector<float> silence(100, 0.0f);
  const auto s = audio::log_mel_spectrogram(silence);
  CHECK(s.shape() == shape{80, 3000});
  CHECK(s(3, 2999) == Approx(-1.5));
  audio::log_mel_options bad;
  bad.hop = 0;
  CHECK_THROWS_AS(audio::log_mel_spectrogram(silence, bad), value_error);
  audio::log_mel_options no_pad;
  no_pad.n_samples = 0;
  CHECK_THROWS_AS(audio::log_mel_spectrogram(std::vector<float>(150, 0.1f), no_pad), value_error);
  CHECK(audio::log_mel_spectrogram(std::vector<float>(1600, 0.1f), no_pad).shape() == shape{80, 10});
}
