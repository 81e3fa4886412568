// The tiny Hugging Face models of the fixtures (tools/make_fixtures.py) through the library's
// family presets (models/gpt2.hpp, models/llama.hpp, models/t5.hpp): their specs, their configs read
// from the fixtures' config JSON by the presets' readers, and loaders. Shared by the model and
// generation tests.
#pragma once

#include <tformer/io/hf_directory.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/encoder_decoder.hpp>
#include <tformer/models/gpt2.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/models/t5.hpp>

#include <filesystem>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"

namespace tformer::test {

using gpt2_spec = models::gpt2<>;
using llama_spec = models::llama<>;
using t5_spec = models::t5</*gated=*/true, /*tied=*/false>;

inline models::model_config gpt2_config(const nlohmann::json& j) { return models::gpt2_config(io::json_fields(j, "hf_gpt2 config")); }
inline models::model_config llama_config(const nlohmann::json& j) { return models::llama_config(io::json_fields(j, "hf_llama config")); }
inline models::model_config t5_config(const nlohmann::json& j) { return models::t5_config(io::json_fields(j, "hf_t5 config")); }

/// tests/data/hf_dirs/<name>: a directory written by tools/make_hf_dir_fixtures.py.
inline std::string hf_dir(const std::string& name) { return (std::filesystem::path(TFORMER_TEST_DATA_DIR) / "hf_dirs" / name).string(); }
/// Its inputs and transformers' outputs.
inline io::safetensors_file hf_reference(const std::string& name) {
  return io::safetensors_file(std::filesystem::path(hf_dir(name)) / "reference.safetensors");
}

/// tests/data/gguf_arch/<name>: llama.cpp's conversion of an hf_dirs fixture (tools/make_gguf_arch_fixtures.py).
inline std::string gguf_arch(const std::string& name) {
  return (std::filesystem::path(TFORMER_TEST_DATA_DIR) / "gguf_arch" / name).string();
}

/// The sizes a GGUF's config reader found equal those config.json gives for the same model.
inline void check_same_sizes(const models::model_config& gguf, const models::model_config& hf) {
  CHECK(gguf.vocab == hf.vocab);
  CHECK(gguf.layers == hf.layers);
  CHECK(gguf.max_positions == hf.max_positions);
  CHECK(gguf.token_types == hf.token_types);
  CHECK(gguf.layer.attention.heads == hf.layer.attention.heads);
  CHECK(gguf.layer.attention.kv_heads == hf.layer.attention.kv_heads);
  CHECK(gguf.layer.attention.head_dim == hf.layer.attention.head_dim);
  CHECK(gguf.layer.ffn.d_ff == hf.layer.ffn.d_ff);
  CHECK(gguf.layer.norm_eps == hf.layer.norm_eps);
}

/// An encoder-decoder's logits on hf_dirs/<name>'s padded source and target batch, checked
/// against transformers' (max abs 1e-4, same argmax at every real position).
template <class Model>
tensor<float> check_seq2seq_logits(const Model& m, const std::string& name) {
  const auto ref = hf_reference(name);
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto dec_ids = ref.load<std::int32_t>("decoder_input_ids"), dec_lengths = ref.load<std::int32_t>("decoder_lengths");
  auto logits = m.decode(dec_ids, m.encode(ids, lengths), dec_lengths);
  const auto want = ref.load<float>("logits");
  const double err = max_abs_diff(logits, want, dec_lengths);
  INFO(name << " logits max abs error " << err);
  CHECK(err <= 1e-4);
  CHECK(same_argmax(logits, want, dec_lengths));
  return logits;
}

/// GPT-2 with the weights of hf_gpt2.model.safetensors.
inline models::decoder_lm<gpt2_spec> load_gpt2() {
  fixture fx("hf_gpt2");
  models::decoder_lm<gpt2_spec> m(gpt2_config(fx.config));
  io::load_safetensors(m, fx.model, io::hf_gpt2());
  return m;
}

/// T5 with the weights of hf_t5.model.safetensors.
inline models::encoder_decoder<t5_spec> load_t5() {
  fixture fx("hf_t5");
  models::encoder_decoder<t5_spec> m(t5_config(fx.config));
  io::load_safetensors(m, fx.model, io::hf_t5());
  return m;
}

}  // namespace tformer::test
