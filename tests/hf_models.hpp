// The tiny Hugging Face models of the fixtures (tools/make_fixtures.py) as tformer specs, their
// configs read from the fixtures' config JSON, and loaders. Shared by the model and generation tests.
#pragma once

#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/encoder_decoder.hpp>

#include "fixture.hpp"

namespace tformer::test {

struct gpt2_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};

struct llama_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};

struct t5_spec {
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using attention_bias = nn::t5_relative_bias;
  using final_norm = nn::rms_norm;
};

models::model_config gpt2_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["n_layer"];
  c.max_positions = j["n_positions"];
  const std::int64_t d = j["n_embd"];
  c.layer.attention = {.d_model = d, .heads = j["n_head"]};
  c.layer.ffn = {.d_model = d, .d_ff = 4 * d, .bias = true};
  c.layer.norm_eps = j["layer_norm_epsilon"];
  return c;
}

models::model_config llama_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["num_hidden_layers"];
  const std::int64_t d = j["hidden_size"];
  c.layer.attention = {.d_model = d, .heads = j["num_attention_heads"], .kv_heads = j["num_key_value_heads"],
                       .head_dim = j["head_dim"], .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = d, .d_ff = j["intermediate_size"], .bias = false};
  c.layer.norm_eps = j["rms_norm_eps"];
  c.layer.rope = nn::rotary{.dim = 0, .base = j["rope_parameters"]["rope_theta"], .interleaved = false};
  return c;
}

models::model_config t5_config(const nlohmann::json& j) {
  models::model_config c;
  c.vocab = j["vocab_size"];
  c.layers = j["num_layers"];
  c.decoder_layers = j["num_decoder_layers"];
  c.relative_buckets = j["relative_attention_num_buckets"];
  c.relative_max_distance = j["relative_attention_max_distance"];
  const std::int64_t d = j["d_model"];
  c.layer.attention = {.d_model = d, .heads = j["num_heads"], .head_dim = j["d_kv"], .qkv_bias = false,
                       .out_bias = false, .scale = 1.0f};
  c.layer.ffn = {.d_model = d, .d_ff = j["d_ff"], .bias = false};
  c.layer.norm_eps = j["layer_norm_epsilon"];
  return c;
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
