// model_config: per-layer rules, and sizes no machine can hold turned into an error naming the field.
#include <tformer/models/config.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/encoder.hpp>

#include <string>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
struct tiny_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::mlp<simd::act::relu>>;
  using final_norm = nn::rms_norm;
};
models::model_config tiny() {
  models::model_config c;
  c.vocab = 50, c.layers = 3;
  c.layer.attention = {.d_model = 16, .heads = 2};
  c.layer.ffn = {.d_model = 16, .d_ff = 32};
  return c;
}
}  // namespace

TEST_CASE("layer_rule gives each layer its own settings", "[models][config]") {
  auto c = tiny();
  c.layer_rule = [](std::int64_t i, nn::layer_config& l) { l.attention.window = i % 2 == 0 ? 4 : 0; };
  CHECK(c.layer_at(0).attention.window == 4);
  CHECK(c.layer_at(1).attention.window == 0);
  models::decoder_lm<tiny_spec> m(c);
  CHECK(m.stack.layers[0].self_attn.config.window == 4);
  CHECK(m.stack.layers[1].self_attn.config.window == 0);
  CHECK(m.stack.layers[2].self_attn.config.window == 4);
}

TEST_CASE("sizes that cannot be allocated are a value_error naming the field, not bad_alloc", "[models][config][errors]") {
  auto wide = tiny();
  wide.layer.attention.d_model = wide.layer.ffn.d_model = std::int64_t{1} << 40;
  const auto msg = test::thrown_message<value_error>([&] { models::decoder_lm<tiny_spec> m(wide); });
  CHECK(msg.find("model_config.layer.attention.d_model = 1099511627776") != std::string::npos);
  CHECK(msg.find("decoder_lm") != std::string::npos);

  auto deep = tiny();
  deep.layers = std::int64_t{1} << 40;
  const auto deep_msg = test::thrown_message<value_error>([&] { models::encoder<tiny_spec> m(deep); });
  CHECK(deep_msg.find("model_config.layers = 1099511627776") != std::string::npos);

  auto vocab = tiny();
  vocab.vocab = std::int64_t{1} << 40;
  CHECK(test::thrown_message<value_error>([&] { models::decoder_lm<tiny_spec> m(vocab); }).find("model_config.vocab") !=
        std::string::npos);

  auto negative = tiny();
  negative.layers = -2;
  CHECK(test::thrown_message<value_error>([&] { models::decoder_lm<tiny_spec> m(negative); })
            .find("model_config.layers must be >= 0, got -2") != std::string::npos);
}
