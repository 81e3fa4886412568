// Must NOT compile: a feed-forward block given where the layer expects a norm policy.
#include <tformer/tformer.hpp>

int main() {
  using ffn = tformer::nn::mlp<tformer::simd::act::relu>;
  tformer::nn::transformer_layer<tformer::nn::pre_ln, ffn, tformer::nn::multi_head_attention<>, ffn> layer;
  return 0;
}
