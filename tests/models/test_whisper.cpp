// Whisper (models/whisper.hpp) on a tiny random WhisperForConditionalGeneration converted by
// CTranslate2's own converter (tools/make_whisper_fixtures.py tiny): the float16 and the int8
// model.bin loaded through the CTranslate2 name map give transformers' encoder output and
// logits (computed on the weights each file holds) within 1e-4; float16 weights kept as f16;
// incremental decoding with a state equals the full pass; the two config readers agree.
#include <tformer/models/whisper.hpp>

#include <tformer/io/ctranslate2.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

namespace {

const std::string data_dir = TFORMER_TEST_DATA_DIR;

struct whisper_case {
  io::safetensors_file data{data_dir + "/whisper_tiny.case.safetensors"};
  tensor<float> features = data.load<float>("features");  // [2, 80, 24]
  tensor<std::int32_t> ids = data.load<std::int32_t>("ids");  // [2, 6]
};

template <class Spec>
models::whisper<Spec> load(const std::string& file) {
  io::ctranslate2_file f(data_dir + "/" + file);
  models::whisper<Spec> m(models::read_whisper_ctranslate2(f));
  io::load_ctranslate2(m, f, io::ct2_whisper());
  return m;
}

template <class Spec>
void check_model(const std::string& file, const std::string& key, double tol) {
  whisper_case c;
  const auto m = load<Spec>(file);
  const auto e = m.encode_features(c.features);
  const auto want_e = c.data.load<float>(key + ".encoded");
  const double enc = test::max_abs_diff(e.hidden, want_e);
  const auto logits = m.decode(c.ids, e);
  const auto want = c.data.load<float>(key + ".logits");
  const double lg = test::max_abs_diff(logits, want);
  INFO(file << ": encoder max diff " << enc << ", logits max diff " << lg);
  CHECK(enc < tol);
  CHECK(lg < tol);
  CHECK(test::same_argmax(logits, want, {}));
}

}  // namespace

TEST_CASE("whisper: CTranslate2 float16 file matches transformers on its weights") {
  check_model<models::whisper_spec<>>("whisper_tiny.ct2.bin", "whisper_tiny", 1e-4);
}

TEST_CASE("whisper: CTranslate2 int8 file (weights / scale) matches transformers on the dequantized weights") {
  check_model<models::whisper_spec<>>("whisper_tiny_int8.ct2.bin", "whisper_tiny_int8", 1e-4);
}

TEST_CASE("whisper: float16 weights kept as f16 give the same logits") {
  check_model<models::whisper_spec<quant::f16>>("whisper_tiny.ct2.bin", "whisper_tiny", 1e-4);
}

TEST_CASE("whisper: step-by-step decoding with a state equals the full pass") {
  whisper_case c;
  const auto m = load<models::whisper_spec<>>("whisper_tiny.ct2.bin");
  const auto e = m.encode_features(c.features);
  const auto full = m.decode(c.ids, e);  // [2, 6, vocab]
  auto state = m.make_state(2, 16);
  const std::int64_t V = m.config.vocab;
  double worst = 0;
  for (std::int64_t t = 0; t < c.ids.dim(1); ++t) {
    tensor<std::int32_t> step(shape{2, 1});  // [2, 1]
    for (std::int64_t b = 0; b < 2; ++b) step(b, 0) = c.ids(b, t);
    const auto l = m.decode(step, e, {}, &state);
    for (std::int64_t b = 0; b < 2; ++b)
      for (std::int64_t v = 0; v < V; ++v) worst = std::max(worst, double(std::fabs(l(b, 0, v) - full(b, t, v))));
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("whisper: config readers, name maps and errors") {
  whisper_case c;
  io::ctranslate2_file f(data_dir + "/whisper_tiny.ct2.bin");
  const auto a = models::read_whisper_ctranslate2(f);
  const auto b = models::read_whisper_hf_config(nlohmann::json::parse(c.data.metadata().at("config")));
  for (const auto* x : {&a, &b}) {
    CHECK(x->model.vocab == 100);
    CHECK(x->model.layers == 2);
    CHECK(x->model.decoder_layers == 2);
    CHECK(x->model.max_positions == 16);
    CHECK(x->model.d_model() == 32);
    CHECK(x->model.layer.attention.heads == 4);
    CHECK(x->model.layer.ffn.d_ff == 64);
    CHECK(x->n_mels == 80);
    CHECK(x->n_audio_ctx == 12);
  }
  CHECK(b.suppress_ids == std::vector<std::int32_t>{5, 7});
  CHECK(b.suppress_ids_begin == std::vector<std::int32_t>{2, 9});
  CHECK(a.sot == -1);  // no vocabulary read: the prefix is unknown
  CHECK_THROWS_AS(a.prefix(), value_error);
  auto d = b;
  d.no_timestamps = 50;
  CHECK(d.prefix() == std::vector<std::int32_t>{3, 50});

  // every variable is used or deliberately ignored, and every parameter has one
  models::whisper<models::whisper_spec<>> m(a);
  CHECK(io::load_ctranslate2(m, f, io::ct2_whisper()) > 0);
  // too many frames for the position table
  tensor<float> big(shape{1, 80, 26});
  CHECK_THROWS_AS(m.encode_features(big), shape_error);
  tensor<float> wrong(shape{1, 40, 24});
  CHECK_THROWS_AS(m.encode_features(wrong), shape_error);
  // a model of other sizes cannot load the file: one io_error lists the mismatches
  auto other = a;
  other.model.layer.ffn.d_ff = 48;
  models::whisper<models::whisper_spec<>> m2(other);
  CHECK_THROWS_AS(io::load_ctranslate2(m2, f, io::ct2_whisper()), io_error);
}
