// Must NOT compile: a tied head cannot have its own format (the head is the embedding table).
#include <tformer/tformer.hpp>

struct wrong_spec {
  using layer = tformer::nn::transformer_layer<tformer::nn::pre_ln, tformer::nn::rms_norm,
                                               tformer::nn::multi_head_attention<>, tformer::nn::mlp<tformer::simd::act::relu>>;
  static constexpr bool tie_embeddings = true;
  using embedding_weights = tformer::quant::bf16;
  using head_weights = tformer::quant::f32;
};

int main() {
  tformer::models::decoder_lm<wrong_spec> model(tformer::models::model_config{});
  return 0;
}
