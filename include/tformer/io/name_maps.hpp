// Name maps from well-known checkpoints to tformer's parameter names (see io/checkpoint.hpp;
// patterns are literal except {i}, a layer number, and *, anything).
//
//   torch_*: PyTorch nn.MultiheadAttention / nn.TransformerEncoderLayer / nn.TransformerDecoderLayer /
//            nn.Transformer state_dict names (fused in_proj split into q, k, v)
//   hf_*:    Hugging Face transformers BERT, GPT-2, Llama (Mistral, Qwen2), T5, BART and Marian checkpoints
//   gguf_*:  llama.cpp's GGUF tensor names (its converters' output) for the llama, qwen2, gpt2 and
//            bert architectures
#pragma once

#include <string>

#include "checkpoint.hpp"

namespace tformer::io {

namespace detail {
// q, k, v, o of a tformer attention block `to` from nn.MultiheadAttention at `from`.
inline void add_torch_mha(name_map& m, const std::string& to, const std::string& from) {
  const char* qkv[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    m.add(to + qkv[i] + ".weight", from + "in_proj_weight", false, i, 3);
    m.add(to + qkv[i] + ".bias", from + "in_proj_bias", false, i, 3);
  }
  m.add(to + "o.weight", from + "out_proj.weight").add(to + "o.bias", from + "out_proj.bias");
}
inline void add_norm(name_map& m, const std::string& to, const std::string& from, bool bias = true) {
  m.add(to + "weight", from + "weight");
  if (bias) m.add(to + "bias", from + "bias");
}
}  // namespace detail

/// @brief nn.MultiheadAttention -> nn::multi_head_attention (visited with prefix "").
inline name_map torch_multihead_attention() {
  name_map m;
  detail::add_torch_mha(m, "", "");
  return m;
}

/// @brief nn.TransformerEncoderLayer -> nn::transformer_layer; layer_prefix for use inside a stack.
inline name_map torch_encoder_layer(const std::string& to = "", const std::string& from = "", name_map m = {}) {
  detail::add_torch_mha(m, to + "attn.", from + "self_attn.");
  detail::add_norm(m, to + "attn_norm.", from + "norm1.");
  m.add(to + "ffn.up.weight", from + "linear1.weight").add(to + "ffn.up.bias", from + "linear1.bias");
  m.add(to + "ffn.down.weight", from + "linear2.weight").add(to + "ffn.down.bias", from + "linear2.bias");
  detail::add_norm(m, to + "ffn_norm.", from + "norm2.");
  return m;
}

/// @brief nn.TransformerDecoderLayer -> nn::cross_decoder_layer.
inline name_map torch_decoder_layer(const std::string& to = "", const std::string& from = "", name_map m = {}) {
  detail::add_torch_mha(m, to + "attn.", from + "self_attn.");
  detail::add_norm(m, to + "attn_norm.", from + "norm1.");
  detail::add_torch_mha(m, to + "cross.", from + "multihead_attn.");
  detail::add_norm(m, to + "cross_norm.", from + "norm2.");
  m.add(to + "ffn.up.weight", from + "linear1.weight").add(to + "ffn.up.bias", from + "linear1.bias");
  m.add(to + "ffn.down.weight", from + "linear2.weight").add(to + "ffn.down.bias", from + "linear2.bias");
  detail::add_norm(m, to + "ffn_norm.", from + "norm3.");
  return m;
}

/// @brief nn.Transformer -> models::encoder_decoder (stacks and final norms; it has no embeddings).
inline name_map torch_transformer() {
  name_map m = torch_encoder_layer("encoder.layers.{i}.", "encoder.layers.{i}.");
  m = torch_decoder_layer("decoder.layers.{i}.", "decoder.layers.{i}.", std::move(m));
  detail::add_norm(m, "encoder.final_norm.", "encoder.norm.");
  detail::add_norm(m, "decoder.final_norm.", "decoder.norm.");
  return m;
}

/// @brief Hugging Face BertModel -> models::encoder (the pooler is loaded separately: hf_bert_pooler).
/// prefix: what precedes the checkpoint's names ("bert." for BertForMaskedLM and the other heads,
/// whose own tensors are then ignored; "" for BertModel and sentence-transformers).
inline name_map hf_bert(const std::string& prefix = "") {
  name_map m;
  const std::string P = prefix;
  m.add("embed.tokens.weight", P + "embeddings.word_embeddings.weight")
      .add("embed.token_type.weight", P + "embeddings.token_type_embeddings.weight")
      .add("embed.positions.weight", P + "embeddings.position_embeddings.weight");
  detail::add_norm(m, "embed.norm.", P + "embeddings.LayerNorm.");
  const std::string L = "layers.{i}.", H = P + "encoder.layer.{i}.";
  const char* names[][2] = {{"q", "query"}, {"k", "key"}, {"v", "value"}};
  for (auto& n : names) {
    m.add(L + "attn." + n[0] + ".weight", H + "attention.self." + n[1] + ".weight");
    m.add(L + "attn." + n[0] + ".bias", H + "attention.self." + n[1] + ".bias");
  }
  m.add(L + "attn.o.weight", H + "attention.output.dense.weight").add(L + "attn.o.bias", H + "attention.output.dense.bias");
  detail::add_norm(m, L + "attn_norm.", H + "attention.output.LayerNorm.");
  m.add(L + "ffn.up.weight", H + "intermediate.dense.weight").add(L + "ffn.up.bias", H + "intermediate.dense.bias");
  m.add(L + "ffn.down.weight", H + "output.dense.weight").add(L + "ffn.down.bias", H + "output.dense.bias");
  detail::add_norm(m, L + "ffn_norm.", H + "output.LayerNorm.");
  m.ignore(P + "pooler.dense.weight").ignore(P + "pooler.dense.bias").ignore(P + "embeddings.position_ids");
  if (!prefix.empty()) m.ignore("cls.*").ignore("classifier.*").ignore("qa_outputs.*");
  return m;
}

/// @brief Hugging Face BertModel's pooler -> models::dense_pooler.
inline name_map hf_bert_pooler() {
  name_map m;
  m.add("dense.weight", "pooler.dense.weight").add("dense.bias", "pooler.dense.bias");
  m.ignore("embeddings.*").ignore("encoder.*");
  return m;
}

/// @brief Hugging Face GPT2LMHeadModel -> models::decoder_lm with tied embeddings (Conv1D weights are
/// stored [in, out] and get transposed; c_attn splits into q, k, v). prefix: "transformer." for
/// GPT2LMHeadModel's names, "" for GPT2Model's (as the original gpt2 checkpoints store them).
inline name_map hf_gpt2(const std::string& prefix = "transformer.") {
  name_map m;
  m.add("embed.tokens.weight", prefix + "wte.weight").add("embed.positions.weight", prefix + "wpe.weight");
  const std::string L = "layers.{i}.", H = prefix + "h.{i}.";
  const char* qkv[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    m.add(L + "attn." + qkv[i] + ".weight", H + "attn.c_attn.weight", true, i, 3);
    m.add(L + "attn." + qkv[i] + ".bias", H + "attn.c_attn.bias", false, i, 3);
  }
  m.add(L + "attn.o.weight", H + "attn.c_proj.weight", true).add(L + "attn.o.bias", H + "attn.c_proj.bias");
  detail::add_norm(m, L + "attn_norm.", H + "ln_1.");
  m.add(L + "ffn.up.weight", H + "mlp.c_fc.weight", true).add(L + "ffn.up.bias", H + "mlp.c_fc.bias");
  m.add(L + "ffn.down.weight", H + "mlp.c_proj.weight", true).add(L + "ffn.down.bias", H + "mlp.c_proj.bias");
  detail::add_norm(m, L + "ffn_norm.", H + "ln_2.");
  detail::add_norm(m, "final_norm.", prefix + "ln_f.");
  m.ignore("lm_head.weight").ignore(H + "attn.bias").ignore(H + "attn.masked_bias");
  return m;
}

/// @brief Hugging Face LlamaForCausalLM -> models::decoder_lm; also Mistral, Qwen2 (q/k/v biases,
/// loaded when the model has them) and SmolLM2. tied: the head is the token table (a checkpoint's
/// lm_head.weight, when it keeps one, is then ignored).
inline name_map hf_llama(bool tied = false) {
  name_map m;
  m.add("embed.tokens.weight", "model.embed_tokens.weight");
  const std::string L = "layers.{i}.", H = "model.layers.{i}.";
  for (const char* p : {"q", "k", "v", "o"}) {
    m.add(L + "attn." + p + ".weight", H + "self_attn." + p + "_proj.weight");
    m.add(L + "attn." + p + ".bias", H + "self_attn." + p + "_proj.bias");
  }
  m.add(L + "attn_norm.weight", H + "input_layernorm.weight");
  m.add(L + "ffn.gate.weight", H + "mlp.gate_proj.weight")
      .add(L + "ffn.up.weight", H + "mlp.up_proj.weight")
      .add(L + "ffn.down.weight", H + "mlp.down_proj.weight");
  m.add(L + "ffn_norm.weight", H + "post_attention_layernorm.weight");
  m.add("final_norm.weight", "model.norm.weight");
  if (tied)
    m.ignore("lm_head.weight");
  else
    m.add("lm_head.weight", "lm_head.weight");
  m.ignore("model.rotary_emb.inv_freq").ignore(H + "self_attn.rotary_emb.inv_freq");
  return m;
}

/// @brief Hugging Face T5ForConditionalGeneration -> models::encoder_decoder. gated: T5 v1.1's
/// gated feed-forward (wi_0, wi_1, wo) rather than v1.0's (wi, wo); tied: the head is the shared
/// table (a checkpoint's lm_head.weight, when it keeps one, is then ignored).
inline name_map hf_t5(bool gated = true, bool tied = false) {
  name_map m;
  m.add("embed.tokens.weight", "shared.weight");
  for (const std::string side : {"encoder", "decoder"}) {
    const std::string L = side + ".layers.{i}.", H = side + ".block.{i}.";
    for (const char* p : {"q", "k", "v", "o"}) m.add(L + "attn." + p + ".weight", H + "layer.0.SelfAttention." + p + ".weight");
    m.add(L + "attn_norm.weight", H + "layer.0.layer_norm.weight");
    const std::string ff = side == "encoder" ? "layer.1." : "layer.2.";
    if (side == "decoder") {
      for (const char* p : {"q", "k", "v", "o"}) m.add(L + "cross." + p + ".weight", H + "layer.1.EncDecAttention." + p + ".weight");
      m.add(L + "cross_norm.weight", H + "layer.1.layer_norm.weight");
    }
    if (gated)
      m.add(L + "ffn.gate.weight", H + ff + "DenseReluDense.wi_0.weight").add(L + "ffn.up.weight", H + ff + "DenseReluDense.wi_1.weight");
    else
      m.add(L + "ffn.up.weight", H + ff + "DenseReluDense.wi.weight");
    m.add(L + "ffn.down.weight", H + ff + "DenseReluDense.wo.weight");
    m.add(L + "ffn_norm.weight", H + ff + "layer_norm.weight");
    m.add(side + ".relative_bias.weight", side + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    m.add(side + ".final_norm.weight", side + ".final_layer_norm.weight");
    m.ignore(side + ".embed_tokens.weight");
  }
  if (tied)
    m.ignore("lm_head.weight");
  else
    m.add("lm_head.weight", "lm_head.weight");
  return m;
}

/// @brief Hugging Face BartForConditionalGeneration / MarianMTModel -> models::encoder_decoder with
/// separate_positions and logits_bias (models::bart): one shared table, per-side learned positions
/// and layernorm_embedding (BART) or computed sinusoids (marian: a stored embed_positions table,
/// as transformers 4 wrote, is ignored), post-LN layers, final_logits_bias. The head is tied (a
/// stored lm_head.weight or per-side embed_tokens copy is ignored).
inline name_map hf_bart(bool marian = false) {
  name_map m;
  m.add("embed.tokens.weight", "model.shared.weight").add("logits_bias", "final_logits_bias");
  for (const std::string side : {"encoder", "decoder"}) {
    const std::string E = side == "encoder" ? "embed." : "decoder_embed.", H = "model." + side + ".";
    if (marian) {
      m.ignore(H + "embed_positions.weight");
    } else {
      m.add(E + "positions.weight", H + "embed_positions.weight");
      detail::add_norm(m, E + "norm.", H + "layernorm_embedding.");
    }
    m.ignore(H + "embed_tokens.weight");
    const std::string L = side + ".layers.{i}.", P = H + "layers.{i}.";
    auto attention = [&](const std::string& to, const std::string& from) {
      for (const char* p : {"q", "k", "v"}) {
        m.add(L + to + p + ".weight", P + from + p + "_proj.weight");
        m.add(L + to + p + ".bias", P + from + p + "_proj.bias");
      }
      m.add(L + to + "o.weight", P + from + "out_proj.weight").add(L + to + "o.bias", P + from + "out_proj.bias");
    };
    attention("attn.", "self_attn.");
    detail::add_norm(m, L + "attn_norm.", P + "self_attn_layer_norm.");
    if (side == "decoder") {
      attention("cross.", "encoder_attn.");
      detail::add_norm(m, L + "cross_norm.", P + "encoder_attn_layer_norm.");
    }
    m.add(L + "ffn.up.weight", P + "fc1.weight").add(L + "ffn.up.bias", P + "fc1.bias");
    m.add(L + "ffn.down.weight", P + "fc2.weight").add(L + "ffn.down.bias", P + "fc2.bias");
    detail::add_norm(m, L + "ffn_norm.", P + "final_layer_norm.");
  }
  m.ignore("lm_head.weight");
  return m;
}

/// @brief llama.cpp's GGUF names for the llama and qwen2 architectures -> models::decoder_lm
/// (Llama, SmolLM2, Mistral, Qwen2): token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v,
/// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output (absent when the head
/// is tied); the q/k/v/output biases (Qwen2's, or Llama's attention_bias) are loaded when the model
/// has them. For the llama architecture llama.cpp's converter permutes the rows of attn_q and
/// attn_k (and their biases) so that rotary pairs are adjacent: run these weights with
/// nn::rotary{.interleaved = true}. For qwen2 it does not (llama.cpp runs it with NEOX rotary):
/// rotate-half. models::llama_config(gguf_file) picks the right one.
inline name_map gguf_llama() {
  name_map m;
  m.add("embed.tokens.weight", "token_embd.weight");
  const std::string L = "layers.{i}.", G = "blk.{i}.";
  m.add(L + "attn.q.weight", G + "attn_q.weight").add(L + "attn.k.weight", G + "attn_k.weight");
  m.add(L + "attn.v.weight", G + "attn_v.weight").add(L + "attn.o.weight", G + "attn_output.weight");
  m.add(L + "attn.q.bias", G + "attn_q.bias").add(L + "attn.k.bias", G + "attn_k.bias");
  m.add(L + "attn.v.bias", G + "attn_v.bias").add(L + "attn.o.bias", G + "attn_output.bias");
  m.add(L + "attn_norm.weight", G + "attn_norm.weight").add(L + "ffn_norm.weight", G + "ffn_norm.weight");
  m.add(L + "ffn.gate.weight", G + "ffn_gate.weight").add(L + "ffn.up.weight", G + "ffn_up.weight");
  m.add(L + "ffn.down.weight", G + "ffn_down.weight");
  m.add("final_norm.weight", "output_norm.weight").add("lm_head.weight", "output.weight");
  m.ignore("rope_freqs.weight");  // Llama 3's rotary divisors: read by models::llama_config(gguf_file)
  return m;
}

/// @brief llama.cpp's GGUF names for the qwen2 architecture: those of gguf_llama (its q/k/v biases
/// included); the rows are in Hugging Face's order (rotate-half rotary, as models::llama_config
/// reads from general.architecture "qwen2").
inline name_map gguf_qwen2() { return gguf_llama(); }

/// @brief llama.cpp's GGUF names for the gpt2 architecture -> models::decoder_lm<models::gpt2>:
/// token_embd, position_embd, blk.N.{attn_norm, attn_qkv (fused, split into q, k, v), attn_output,
/// ffn_norm, ffn_up, ffn_down} with weights and biases, output_norm. llama.cpp's converter has
/// already transposed GPT-2's Conv1D weights to [out, in]. An output.weight is ignored: the preset
/// ties its head, and models::gpt2_config(gguf_file) checks that it equals token_embd.
inline name_map gguf_gpt2() {
  name_map m;
  m.add("embed.tokens.weight", "token_embd.weight").add("embed.positions.weight", "position_embd.weight");
  const std::string L = "layers.{i}.", G = "blk.{i}.";
  const char* qkv[] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    m.add(L + "attn." + qkv[i] + ".weight", G + "attn_qkv.weight", false, i, 3);
    m.add(L + "attn." + qkv[i] + ".bias", G + "attn_qkv.bias", false, i, 3);
  }
  m.add(L + "attn.o.weight", G + "attn_output.weight").add(L + "attn.o.bias", G + "attn_output.bias");
  detail::add_norm(m, L + "attn_norm.", G + "attn_norm.");
  m.add(L + "ffn.up.weight", G + "ffn_up.weight").add(L + "ffn.up.bias", G + "ffn_up.bias");
  m.add(L + "ffn.down.weight", G + "ffn_down.weight").add(L + "ffn.down.bias", G + "ffn_down.bias");
  detail::add_norm(m, L + "ffn_norm.", G + "ffn_norm.");
  detail::add_norm(m, "final_norm.", "output_norm.");
  m.ignore("output.weight");
  return m;
}

/// @brief llama.cpp's GGUF names for the bert architecture -> models::encoder<models::bert>:
/// token_embd, token_types, position_embd, token_embd_norm, blk.N.{attn_q, attn_k, attn_v,
/// attn_output, attn_output_norm, ffn_up, ffn_down, layer_output_norm} with weights and biases.
/// A classifier head (cls, cls.output of BertForSequenceClassification) is ignored.
inline name_map gguf_bert() {
  name_map m;
  m.add("embed.tokens.weight", "token_embd.weight")
      .add("embed.token_type.weight", "token_types.weight")
      .add("embed.positions.weight", "position_embd.weight");
  detail::add_norm(m, "embed.norm.", "token_embd_norm.");
  const std::string L = "layers.{i}.", G = "blk.{i}.";
  for (const char* p : {"q", "k", "v"}) {
    m.add(L + "attn." + p + ".weight", G + "attn_" + p + ".weight");
    m.add(L + "attn." + p + ".bias", G + "attn_" + p + ".bias");
  }
  m.add(L + "attn.o.weight", G + "attn_output.weight").add(L + "attn.o.bias", G + "attn_output.bias");
  detail::add_norm(m, L + "attn_norm.", G + "attn_output_norm.");
  m.add(L + "ffn.up.weight", G + "ffn_up.weight").add(L + "ffn.up.bias", G + "ffn_up.bias");
  m.add(L + "ffn.down.weight", G + "ffn_down.weight").add(L + "ffn.down.bias", G + "ffn_down.bias");
  detail::add_norm(m, L + "ffn_norm.", G + "layer_output_norm.");
  m.ignore("cls.*");
  return m;
}

}  // namespace tformer::io
