// Layers against PyTorch's nn.TransformerEncoderLayer (post-norm ReLU, pre-norm GELU) and
// nn.TransformerDecoderLayer, loaded through the nn.Transformer* name maps.
#include <tformer/io/name_maps.hpp>
#include <tformer/nn/layers.hpp>
#include <tformer/nn/parameters.hpp>

#include "catch.hpp"
#include "fixture.hpp"

using namespace tformer;

namespace {
nn::layer_config torch_layer_config() {
  nn::layer_config c;
  c.attention = {.d_model = 16, .heads = 4};
  c.ffn = {.d_model = 16, .d_ff = 32, .bias = true};
  c.norm_eps = 1e-5f;
  return c;
}

template <class Layer>
void check_encoder_layer(const char* name) {
  test::fixture fx(name);
  Layer layer(torch_layer_config());
  io::load_safetensors(layer, fx.model, io::torch_encoder_layer());
  auto x = fx.f32("x");
  const auto lengths = fx.i32("lengths");
  layer.forward(x, nn::sequence_info{lengths, {}}, {});
  const double err = test::max_abs_diff(x, fx.f32("y"), lengths);
  INFO(name << ": max abs error " << err);
  CHECK(err <= 1e-5);  // outputs are LayerNorm-scaled, O(1); measured ~5e-7
}
}  // namespace

TEST_CASE("post-norm ReLU encoder layer matches nn.TransformerEncoderLayer", "[layers][parity]") {
  check_encoder_layer<nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>>(
      "torch_encoder_layer_post_relu");
}

TEST_CASE("pre-norm GELU encoder layer matches nn.TransformerEncoderLayer(norm_first=True)", "[layers][parity]") {
  check_encoder_layer<nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>>>(
      "torch_encoder_layer_pre_gelu");
}

TEST_CASE("decoder layer matches nn.TransformerDecoderLayer", "[layers][parity]") {
  test::fixture fx("torch_decoder_layer");
  nn::cross_decoder_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>> layer(
      torch_layer_config());
  io::load_safetensors(layer, fx.model, io::torch_decoder_layer());
  auto tgt = fx.f32("tgt");
  const auto tgt_lengths = fx.i32("tgt_lengths"), src_lengths = fx.i32("src_lengths");
  nn::cross_kv memory;
  layer.cross_attn.project_kv(fx.f32("memory"), memory);
  ops::attention_mask causal;
  causal.causal = true;
  layer.forward(tgt, nn::sequence_info{tgt_lengths, {}}, causal, nullptr, memory, src_lengths);
  const double err = test::max_abs_diff(tgt, fx.f32("y"), tgt_lengths);
  INFO("max abs error " << err);
  CHECK(err <= 1e-5);
}

TEST_CASE("parallel layer computes x + Attn(N(x)) + FFN(N(x)) with one norm", "[layers]") {
  nn::layer_config c = torch_layer_config();
  nn::parallel_layer<nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>> layer(c);
  nn::init_random(layer, 4);
  tensor<float> x(shape{2, 3, 16});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::sin(0.3 * static_cast<double>(i));
  auto want = x;
  tensor<float> n(shape{2, 3, 16}), a(shape{2, 3, 16}), f(shape{2, 3, 16});
  layer.norm.forward(x, n);
  layer.self_attn.forward(n, a, {});
  layer.ffn.forward(n, f);
  ops::add(want, a, want);
  ops::add(want, f, want);
  layer.forward(x, {}, {});
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::fabs(x.data()[i] - want.data()[i]) <= 1e-6f);
}
