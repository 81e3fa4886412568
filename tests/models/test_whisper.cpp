// Whisper (models/whisper.hpp) on a tiny random WhisperForConditionalGeneration converted by
// CTranslate2's own converter (tools/make_whisper_fixtures.py tiny): the float16 and the int8
// model.bin loaded through the CTranslate2 name map give transformers' encoder output and
// logits (computed on the weights each file holds) within 1e-4; float16 weights kept as f16;
// incremental decoding with a state equals the full pass; the two config readers agree. The same
// model as a transformers directory (tools/make_whisper_fixtures.py tiny_hf:
// tests/data/hf_dirs/whisper_tiny/, the float16 file's weights) loads with models::load_whisper to
// the same logits, and load_whisper picks CTranslate2 for a model.bin directory; directories of
// neither layout, other model types and bad fields are typed errors naming the file and field.
#include <tformer/models/whisper.hpp>

#include <tformer/io/ctranslate2.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"
#include "support.hpp"

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

const std::string hf_dir = data_dir + "/hf_dirs/whisper_tiny";

// Checks m's encoder output and logits on the case against the references under key.
template <class Model>
void check_outputs(const Model& m, const std::string& what, const std::string& key, double tol) {
  whisper_case c;
  const auto e = m.encode_features(c.features);
  const auto want_e = c.data.load<float>(key + ".encoded");
  const double enc = test::max_abs_diff(e.hidden, want_e);
  const auto logits = m.decode(c.ids, e);
  const auto want = c.data.load<float>(key + ".logits");
  const double lg = test::max_abs_diff(logits, want);
  INFO(what << ": encoder max diff " << enc << ", logits max diff " << lg);
  CHECK(enc < tol);
  CHECK(lg < tol);
  CHECK(test::same_argmax(logits, want, {}));
}

template <class Spec>
void check_model(const std::string& file, const std::string& key, double tol) {
  check_outputs(load<Spec>(file), file, key, tol);
}

// A fresh, empty directory under the system's temporary one.
std::filesystem::path temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("tformer_test_whisper_" + name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// The tiny model as a CTranslate2 directory: model.bin, CTranslate2's config.json (the case file's
// ct2_config) and the transformers directory's tokenizer.json (no vocabulary file).
std::filesystem::path ct2_dir() {
  const auto dir = temp_dir("ct2");
  std::filesystem::copy_file(data_dir + "/whisper_tiny.ct2.bin", dir / "model.bin");
  std::filesystem::copy_file(hf_dir + "/tokenizer.json", dir / "tokenizer.json");
  whisper_case c;
  write_text(dir / "config.json", c.data.metadata().at("ct2_config"));
  return dir;
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

TEST_CASE("whisper: transformers directory loaded by load_whisper matches transformers") {
  const auto m = models::load_whisper(hf_dir);
  check_outputs(m, hf_dir, "whisper_tiny", 1e-4);
  const auto& s = m.settings;
  CHECK(s.model.vocab == 100);
  CHECK(s.n_audio_ctx == 12);
  CHECK(s.sot == 3);            // config.json's decoder_start_token_id
  CHECK(s.eot == 2);            // its eos_token_id
  CHECK(s.no_timestamps == 4);  // generation_config.json's no_timestamps_token_id
  CHECK(s.transcribe == 5);     // its task_to_id
  CHECK(s.translate == 6);
  CHECK(s.suppress_ids == std::vector<std::int32_t>{5, 7});
  CHECK(s.suppress_ids_begin == std::vector<std::int32_t>{2, 9});
  CHECK(s.prefix() == std::vector<std::int32_t>{3, 4});
  CHECK(models::whisper_directory_layout(hf_dir) == models::whisper_layout::transformers);

  // from an open io::hf_directory, and with the float16 weights kept as f16
  const io::hf_directory dir(hf_dir);
  check_outputs(models::load_whisper(dir), "load_whisper(hf_directory)", "whisper_tiny", 1e-4);
  check_outputs(models::load_whisper<models::whisper_spec<quant::f16>>(hf_dir), "f16 weights", "whisper_tiny", 1e-4);
}

TEST_CASE("whisper: load_whisper reads a model.bin directory as CTranslate2, to the same model") {
  const auto dir = ct2_dir();
  CHECK(models::whisper_directory_layout(dir) == models::whisper_layout::ctranslate2);
  const auto m = models::load_whisper(dir);
  check_outputs(m, dir.string(), "whisper_tiny", 1e-4);
  const auto& s = m.settings;
  CHECK(s.suppress_ids == std::vector<std::int32_t>{5, 7});  // CTranslate2's config.json
  CHECK(s.suppress_ids_begin == std::vector<std::int32_t>{2, 9});
  CHECK(s.sot == 3);  // no vocabulary file: tokenizer.json's added tokens
  CHECK(s.eot == 2);
  CHECK(s.no_timestamps == 4);
  CHECK(s.prefix() == std::vector<std::int32_t>{3, 4});

  // the two layouts hold the same weights: the same logits, to the bit
  whisper_case c;
  const auto h = models::load_whisper(hf_dir);
  const auto a = m.decode(c.ids, m.encode_features(c.features));
  const auto b = h.decode(c.ids, h.encode_features(c.features));
  CHECK(test::max_abs_diff(a, b) == 0.0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("whisper: load_whisper errors name the directory, file and field") {
  namespace fs = std::filesystem;
  // not a directory
  std::string msg = test::thrown_message<io_error>([] { (void)models::load_whisper("/nonexistent/whisper"); });
  CHECK(msg.find("'/nonexistent/whisper' is not a directory") != std::string::npos);

  // neither layout
  const auto empty = temp_dir("empty");
  msg = test::thrown_message<io_error>([&] { (void)models::load_whisper(empty); });
  CHECK(msg == "tformer: '" + empty.string() + "' is not a Whisper model directory: it has neither model.bin (CTranslate2's "
               "layout) nor config.json (transformers')");

  // another model type: config_error naming config.json and model_type
  try {
    (void)models::load_whisper(data_dir + "/hf_dirs/bart");
    FAIL("no error for a BART directory");
  } catch (const io::config_error& e) {
    INFO(e.what());
    CHECK(e.file() == data_dir + "/hf_dirs/bart/config.json");
    CHECK(e.field() == "model_type");
    CHECK(std::string(e.what()).find("is 'bart', not 'whisper'") != std::string::npos);
  }

  // CTranslate2's config.json without model.bin; config.json without weights
  const auto no_bin = temp_dir("no_bin");
  write_text(no_bin / "config.json", R"({"suppress_ids": [5, 7], "suppress_ids_begin": [2, 9], "lang_ids": []})");
  msg = test::thrown_message<io_error>([&] { (void)models::load_whisper(no_bin); });
  CHECK(msg.find("no model.bin") != std::string::npos);
  const auto no_weights = temp_dir("no_weights");
  fs::copy_file(hf_dir + "/config.json", no_weights / "config.json");
  msg = test::thrown_message<io_error>([&] { (void)models::load_whisper(no_weights); });
  CHECK(msg.find("neither model.safetensors") != std::string::npos);

  // a bad field of generation_config.json: config_error naming that file and the field
  const auto bad_gen = temp_dir("bad_gen");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) fs::copy_file(hf_dir + "/" + f, bad_gen / f);
  write_text(bad_gen / "generation_config.json", R"({"no_timestamps_token_id": 100})");
  try {
    (void)models::load_whisper(bad_gen);
    FAIL("no error for no_timestamps_token_id 100");
  } catch (const io::config_error& e) {
    INFO(e.what());
    CHECK(e.file() == (bad_gen / "generation_config.json").string());
    CHECK(e.field() == "no_timestamps_token_id");
  }
  // a model.bin that is not a CTranslate2 file
  const auto bad_bin = temp_dir("bad_bin");
  write_text(bad_bin / "model.bin", "not a model");
  msg = test::thrown_message<io_error>([&] { (void)models::load_whisper(bad_bin); });
  CHECK(msg.find((bad_bin / "model.bin").string()) != std::string::npos);
  for (const auto& d : {empty, no_bin, no_weights, bad_gen, bad_bin}) fs::remove_all(d);

  // config.json fields: each error names the field
  whisper_case c;
  const auto good = nlohmann::json::parse(c.data.metadata().at("config"));
  auto field_of = [](const nlohmann::json& j) {
    try {
      (void)models::read_whisper_hf_config(j, "whisper/config.json");
    } catch (const io::config_error& e) {
      CHECK(e.file() == "whisper/config.json");
      return e.field();
    }
    return std::string("<nothing thrown>");
  };
  auto with = [&](const char* key, const nlohmann::json& v) {
    auto j = good;
    if (v.is_null()) j.erase(key);
    else j[key] = v;
    return j;
  };
  CHECK(field_of(with("model_type", "bert")) == "model_type");
  CHECK(field_of(with("d_model", nullptr)) == "d_model");
  CHECK(field_of(with("vocab_size", "100")) == "vocab_size");
  CHECK(field_of(with("decoder_attention_heads", 8)) == "decoder_attention_heads");
  auto heads5 = with("encoder_attention_heads", 5);
  heads5["decoder_attention_heads"] = 5;
  CHECK(field_of(heads5) == "encoder_attention_heads");  // 5 does not divide d_model 32
  CHECK(field_of(with("decoder_ffn_dim", 48)) == "decoder_ffn_dim");
  CHECK(field_of(with("activation_function", "relu")) == "activation_function");
  CHECK(field_of(with("scale_embedding", true)) == "scale_embedding");
  CHECK(field_of(with("decoder_start_token_id", 100)) == "decoder_start_token_id");
  CHECK(field_of(with("suppress_tokens", nlohmann::json::array({5, -1}))) == "suppress_tokens[1]");
  CHECK(field_of(with("begin_suppress_tokens", 2)) == "begin_suppress_tokens");
  CHECK(field_of(good) == "<nothing thrown>");
}
