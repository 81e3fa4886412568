// Writing a Llama-family model as llama.cpp's converter lays out a llama-architecture GGUF (q/k
// rows permuted for adjacent rotary pairs, norms in F32), in chosen weight formats. Shared by the
// GGUF model tests.
#pragma once

#include <tformer/io/gguf.hpp>
#include <tformer/models/config.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/nn/rotary.hpp>
#include <tformer/quant/matrix.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>

namespace tformer::test {

/// A tiny Llama's sizes (d 32, GQA 4 / 2 heads, d_ff 64: rows in whole Q8_0 / Q4_1 blocks).
inline models::model_config tiny_llama_config() {
  models::model_config c;
  c.vocab = 64, c.layers = 2;
  c.layer.attention = {.d_model = 32, .heads = 4, .kv_heads = 2, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 32, .d_ff = 64, .bias = false};
  c.layer.norm_eps = 1e-5f;
  c.layer.rope = nn::rotary{.base = 500000.0f};
  return c;
}

/// llama.cpp's permute(): the rows of each head reordered so rotate-half pairs (i, i + hd/2) become
/// adjacent pairs (2i, 2i + 1).
inline tensor<float> permute_rows(tensor_view<const float> w, std::int64_t heads) {
  tensor<float> out(w.shape());
  const std::int64_t hd = w.dim(0) / heads, cols = w.dim(1);
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t i = 0; i < hd / 2; ++i)
      for (std::int64_t j = 0; j < 2; ++j)
        std::copy_n(w.row(h * hd + j * hd / 2 + i), cols, out.data() + (h * hd + 2 * i + j) * cols);
  return out;
}

/// Writes m (a float models::decoder_lm<models::llama<...>>) to path as a llama-architecture GGUF:
/// layer matrices in Layer, the token table (and an untied head) in Table, norms in F32; a tied
/// model gets no output.weight.
template <class Layer, class Table = Layer, class Model>
void write_llama_gguf(const Model& m, const std::filesystem::path& path) {
  const auto& c = m.config;
  io::gguf_writer w;
  w.add("general.architecture", std::string("llama"));
  w.add("llama.block_count", static_cast<std::uint32_t>(c.layers));
  w.add("llama.embedding_length", static_cast<std::uint32_t>(c.d_model()));
  w.add("llama.feed_forward_length", static_cast<std::uint32_t>(c.layer.ffn.d_ff));
  w.add("llama.attention.head_count", static_cast<std::uint32_t>(c.layer.attention.heads));
  w.add("llama.attention.head_count_kv", static_cast<std::uint32_t>(c.layer.attention.kv_heads));
  w.add("llama.attention.layer_norm_rms_epsilon", c.layer.norm_eps);
  w.add("llama.rope.freq_base", c.layer.rope.base);
  w.add("llama.vocab_size", static_cast<std::uint32_t>(c.vocab));
  std::deque<quant::matrix<Layer>> layers;  // kept alive (and in place) until write()
  std::deque<quant::matrix<Table>> tables;
  auto layer = [&](const std::string& name, tensor_view<const float> t) {
    w.add_tensor(name, layers.emplace_back(quant::matrix<Layer>::quantize(t)));
  };
  w.add_tensor("token_embd.weight", tables.emplace_back(quant::matrix<Table>::quantize(m.embed.tokens.weight.view())));
  for (std::int64_t i = 0; i < c.layers; ++i) {
    const auto& l = m.stack.layers[static_cast<std::size_t>(i)];
    const std::string p = "blk." + std::to_string(i) + ".";
    layer(p + "attn_q.weight", permute_rows(l.self_attn.q.weight.view(), c.layer.attention.heads));
    layer(p + "attn_k.weight", permute_rows(l.self_attn.k.weight.view(), c.layer.attention.kv_heads));
    layer(p + "attn_v.weight", l.self_attn.v.weight.view());
    layer(p + "attn_output.weight", l.self_attn.o.weight.view());
    layer(p + "ffn_gate.weight", l.ffn.gate.weight.view());
    layer(p + "ffn_up.weight", l.ffn.up.weight.view());
    layer(p + "ffn_down.weight", l.ffn.down.weight.view());
    w.add_tensor(p + "attn_norm.weight", l.attn_residual.norm_in.weight);
    w.add_tensor(p + "ffn_norm.weight", l.ffn_residual.norm_in.weight);
  }
  w.add_tensor("output_norm.weight", m.stack.final_norm.weight);
  if constexpr (!Model::traits::tie_embeddings)
    w.add_tensor("output.weight", tables.emplace_back(quant::matrix<Table>::quantize(m.lm_head.weight.view())));
  w.write(path);
}

}  // namespace tformer::test
