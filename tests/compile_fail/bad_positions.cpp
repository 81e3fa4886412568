// Must NOT compile: a spec whose positions member is a rotary policy, which belongs inside the
// attention block. The build log must carry the one readable line of spec_traits' static_assert.
#include <tformer/tformer.hpp>

struct wrong_spec {
  using layer = tformer::nn::transformer_layer<tformer::nn::pre_ln, tformer::nn::rms_norm,
                                               tformer::nn::multi_head_attention<>, tformer::nn::mlp<tformer::simd::act::relu>>;
  using positions = tformer::nn::rotary;
};

int main() {
  tformer::models::decoder_lm<wrong_spec> model(tformer::models::model_config{});
  return 0;
}
