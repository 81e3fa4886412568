// Specs choose weight formats for every linear and table at once, or per role (attention,
// feed-forward, embedding, head); a model in a format equals the float model whose weights were
// rounded to that format.
#include <tformer/io/checkpoint.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/quant/bf16.hpp>
#include <tformer/quant/f16.hpp>

#include <cmath>
#include <filesystem>
#include <type_traits>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
struct f32_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};
struct bf16_spec : f32_spec {
  using weights = quant::bf16;
};
struct ffn_bf16_spec : f32_spec {
  using ffn_weights = quant::bf16;
};
struct roles_spec : f32_spec {
  using attention_weights = quant::f16;
  using embedding_weights = quant::bf16;
  using head_weights = quant::f16;
};

template <class Spec>
using layer_of = typename models::decoder_lm<Spec>::layers_type;
template <class M>
using only_layer = typename models::decoder_lm<M>::stack_type::layer_type;

static_assert(std::is_same_v<only_layer<bf16_spec>::attention_format, quant::bf16>);
static_assert(std::is_same_v<only_layer<bf16_spec>::ffn_format, quant::bf16>);
static_assert(std::is_same_v<models::decoder_lm<bf16_spec>::head_type, nn::linear<quant::bf16>>);
static_assert(std::is_same_v<only_layer<ffn_bf16_spec>::attention_format, quant::f32>);
static_assert(std::is_same_v<only_layer<ffn_bf16_spec>::ffn_format, quant::bf16>);
static_assert(std::is_same_v<models::decoder_lm<ffn_bf16_spec>::head_type, nn::linear<quant::f32>>);
static_assert(std::is_same_v<only_layer<roles_spec>::attention_format, quant::f16>);
static_assert(std::is_same_v<only_layer<roles_spec>::ffn_format, quant::f32>);
static_assert(std::is_same_v<models::decoder_lm<roles_spec>::head_type, nn::linear<quant::f16>>);
static_assert(std::is_same_v<decltype(models::decoder_lm<roles_spec>::embedder_type::tokens), nn::embedding<quant::bf16>>);
static_assert(std::is_same_v<only_layer<f32_spec>, f32_spec::layer>, "no format chosen: the layer as written");

models::model_config config() {
  models::model_config c;
  c.vocab = 64, c.layers = 2;
  c.layer.attention = {.d_model = 32, .heads = 4, .kv_heads = 2, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 32, .d_ff = 64, .bias = false};
  return c;
}

// Every weight of m rounded through format F and back to float.
template <class M, class F>
void round_weights(M& m, F) {
  m.visit(
      [](const std::string&, auto& p) {
        using P = std::remove_reference_t<decltype(p)>;
        if constexpr (quant::is_matrix<P>) p.quantize_from(quant::matrix<F>::quantize(p.to_float()).to_float());
      },
      "");
}
}  // namespace

TEST_CASE("a bf16 spec equals the f32 model on bf16-rounded weights", "[models][spec][formats]") {
  models::decoder_lm<f32_spec> f32_model(config());
  nn::init_random(f32_model, 11);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_spec_formats.safetensors";
  io::save_safetensors(f32_model, path);
  models::decoder_lm<bf16_spec> bf16_model(config());
  io::load_safetensors(bf16_model, io::safetensors_file(path), io::identity_map(bf16_model));  // quantized on load
  CHECK(nn::parameter_bytes(bf16_model) < nn::parameter_bytes(f32_model) * 6 / 10);
  round_weights(f32_model, quant::bf16{});
  tensor<std::int32_t> ids(shape{2, 5});
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<std::int32_t>((i * 13) % 64);
  const auto want = f32_model.forward(ids), got = bf16_model.forward(ids);
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(std::fabs(got.data()[i] - want.data()[i]) <= 1e-5f);

  // per role: the f16 attention, bf16 table and f16 head of roles_spec
  models::decoder_lm<roles_spec> roles(config());
  io::load_safetensors(roles, io::safetensors_file(path), io::identity_map(roles));
  models::decoder_lm<f32_spec> ref(config());
  io::load_safetensors(ref, io::safetensors_file(path), io::identity_map(ref));
  for (std::size_t l = 0; l < 2; ++l) {
    round_weights(ref.stack.layers[l].self_attn, quant::f16{});
  }
  ref.embed.tokens.weight.quantize_from(quant::matrix<quant::bf16>::quantize(ref.embed.tokens.weight.to_float()).to_float());
  ref.lm_head.weight.quantize_from(quant::matrix<quant::f16>::quantize(ref.lm_head.weight.to_float()).to_float());
  const auto want2 = ref.forward(ids), got2 = roles.forward(ids);
  for (std::int64_t i = 0; i < want2.numel(); ++i) REQUIRE(std::fabs(got2.data()[i] - want2.data()[i]) <= 1e-5f);
  std::filesystem::remove(path);
}
