// A BERT-style encoder defined in user code: learned absolute positions, Post-LN LayerNorm,
// bidirectional multi-head attention with a padding mask, GELU MLP; CLS and masked-mean pooling.
// Random weights by default; --weights FILE loads a Hugging Face BertModel checkpoint of the same
// sizes (e.g. tests/data/hf_bert.model.safetensors).
#include <tformer/tformer.hpp>

#include <cmath>
#include <cstdio>
#include <string>

using namespace tformer;

// ---- the model definition ---------------------------------------------------------------------
struct bert_spec {
  using layer = nn::transformer_layer<nn::post_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu>>;
  using positions = nn::learned_positions;
  using embed_norm = nn::layer_norm;
};

models::model_config bert_config() {
  models::model_config c;
  c.vocab = 97, c.layers = 2, c.max_positions = 40, c.token_types = 2;
  c.layer.attention = {.d_model = 32, .heads = 4};
  c.layer.ffn = {.d_model = 32, .d_ff = 64, .bias = true};
  c.layer.norm_eps = 1e-12f;
  return c;
}
// ---- end of the model definition ---------------------------------------------------------------

int main(int argc, char** argv) try {
  models::encoder<bert_spec> bert(bert_config());
  if (argc == 3 && std::string(argv[1]) == "--weights")
    io::load_safetensors(bert, io::safetensors_file(argv[2]), io::hf_bert());
  else
    nn::init_random(bert, 42);
  std::printf("BERT-style encoder: %lld parameters\n", static_cast<long long>(nn::count_parameters(bert)));

  // two sentences in one padded batch: 6 and 3 real tokens
  tensor<std::int32_t> ids(shape{2, 6}), lengths(shape{2});
  const std::int32_t tokens[2][6] = {{2, 17, 33, 8, 41, 3}, {2, 56, 3, 0, 0, 0}};
  for (int b = 0; b < 2; ++b)
    for (int s = 0; s < 6; ++s) ids(b, s) = tokens[b][s];
  lengths(0) = 6, lengths(1) = 3;

  const tensor<float> hidden = bert.forward(ids, lengths);  // [2, 6, 32]
  tensor<float> cls(shape{2, 32}), mean(shape{2, 32});
  models::pool(hidden, lengths, models::pooling::cls, cls);
  models::pool(hidden, lengths, models::pooling::mean, mean);
  double dot = 0, n0 = 0, n1 = 0;
  for (int c = 0; c < 32; ++c) {
    dot += mean(0, c) * mean(1, c);
    n0 += mean(0, c) * mean(0, c);
    n1 += mean(1, c) * mean(1, c);
  }
  std::printf("cls[0][0:4]  = %+.5f %+.5f %+.5f %+.5f\n", cls(0, 0), cls(0, 1), cls(0, 2), cls(0, 3));
  std::printf("mean[1][0:4] = %+.5f %+.5f %+.5f %+.5f\n", mean(1, 0), mean(1, 1), mean(1, 2), mean(1, 3));
  std::printf("cosine(mean[0], mean[1]) = %.5f\n", dot / std::sqrt(n0 * n1));
  return 0;
} catch (const tformer::error& e) {
  std::fprintf(stderr, "bert_encoder: %s\n", e.what());
  return 1;
}
