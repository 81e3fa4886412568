// models::model_state: per-layer states, positions and the workspace of an incremental decode,
// used by generate only through make_state, forward and select.
#include <tformer/models/decoder.hpp>
#include <tformer/models/state.hpp>
#include <tformer/nn/parameters.hpp>

#include <vector>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
struct tiny_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>, nn::mlp<simd::act::relu>>;
  using final_norm = nn::rms_norm;
};
}  // namespace

TEST_CASE("select moves every layer's state and the positions together", "[models][state]") {
  models::model_config c;
  c.vocab = 40, c.layers = 2;
  c.layer.attention = {.d_model = 16, .heads = 2, .kv_heads = 1};
  c.layer.ffn = {.d_model = 16, .d_ff = 32};
  models::decoder_lm<tiny_spec> m(c);
  nn::init_random(m, 3);
  auto state = m.make_state(3, 8);
  CHECK(state.batch() == 3);
  CHECK(state.layers.size() == 2);
  CHECK(state.bytes() == 2 * m.stack.layers[0].make_state(3, 8).bytes());
  tensor<std::int32_t> ids(shape{3, 4}), lengths(shape{3});
  for (std::int64_t i = 0; i < 12; ++i) ids.data()[i] = static_cast<std::int32_t>((i * 7) % 40);
  lengths(0) = 4, lengths(1) = 2, lengths(2) = 3;
  (void)m.forward(ids, lengths, &state);
  CHECK(state.lengths(1) == 2);

  // keep row 2 twice: the next token must see the same context in both copies, and row 2's alone
  const std::vector<std::int64_t> rows = {2, 2};
  state.select(rows);
  CHECK(state.batch() == 2);
  CHECK(state.lengths(0) == 3);
  tensor<std::int32_t> next(shape{2, 1}, 5);
  const auto both = m.forward(next, {}, &state);

  auto alone = m.make_state(1, 8);
  tensor<std::int32_t> ids2(shape{1, 3});
  for (std::int64_t s = 0; s < 3; ++s) ids2(0, s) = ids(2, s);
  (void)m.forward(ids2, {}, &alone);
  tensor<std::int32_t> next1(shape{1, 1}, 5);
  const auto one = m.forward(next1, {}, &alone);
  for (std::int64_t v = 0; v < 40; ++v) {
    REQUIRE(both(0, 0, v) == both(1, 0, v));
    REQUIRE(std::fabs(both(0, 0, v) - one(0, 0, v)) <= 1e-5f);
  }
}
