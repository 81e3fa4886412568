// One row of the quantization error report (tools/quant_report.py): a Llama-family GGUF decoder
// (SmolLM2) run by tformer with its layers' linears in one weight format, chosen when this file is
// compiled, and its perplexity on a text, measured as llama.cpp's llama-perplexity measures it, so
// the two columns of the report compare like with like:
//
//   the text is tokenized whole (with the vocabulary's BOS when it asks for one) and cut into
//   chunks of CTX tokens (the rest is dropped); each chunk is one forward pass from an empty
//   cache, its first token replaced by BOS when the vocabulary adds one; the negative log
//   likelihood of token j + 1 given the chunk up to j is summed for j in [CTX / 2, CTX - 1), and
//   the perplexity is exp(sum / count).
//
// It also times prefill (the chunks' forward passes) and decode (one sequence, a token at a time
// after a 16-token prompt), and prints one JSON object on standard output.
//
// With --encoder DIR --sentences FILE it measures a BERT-family sentence encoder instead
// (all-MiniLM-L6-v2's directory): its layers' linears in REPORT_WEIGHTS (token, position and
// type tables float), each line of FILE embedded as sentence-transformers does (truncated to
// --max-tokens, batches of --batch), and the cosine of each embedding to the f32 model's.
//
// With -DREPORT_KV=<a format> (tformer::quant::q8_0, ...) the keys and values are cached in that
// format (nn::quantized_kv_cache); every chunk runs through a cache either way.
//
// Developer machine only; compiled by tools/quant_report.py once per format, e.g.
//
//   g++ -std=c++20 -O3 -march=native -fopenmp -Iinclude -isystem /usr/include/eigen3
//       -DREPORT_WEIGHTS=tformer::quant::q4_k -DREPORT_EMBEDDING=tformer::quant::q8_0
//       tools/quant_report.cpp -lpcre2-8 -lutf8proc -o /tmp/quant_report_q4_k
//   /tmp/quant_report_q4_k --model SmolLM2-135M-Instruct.Q4_1.gguf --text FILE [--ctx 512]
//       [--chunks N] [--threads N] [--decode N]
//
// Weights whose GGUF type is REPORT_WEIGHTS load as they are (a file llama.cpp's quantizer wrote
// runs on the same bytes in both programs); others are dequantized and quantized into it on load
// (tformer's quantizer).
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_source.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/bert.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/nn/quantized_kv_cache.hpp>
#include <tformer/quant/hadamard.hpp>
#include <tformer/text/gguf_tokenizer.hpp>
#include <tformer/text/tokenizer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#ifndef REPORT_WEIGHTS
#error "compile with -DREPORT_WEIGHTS=<a tformer weight format>, e.g. tformer::quant::q4_k"
#endif
#ifndef REPORT_EMBEDDING
#define REPORT_EMBEDDING tformer::quant::q8_0
#endif

using namespace tformer;
using weights = REPORT_WEIGHTS;
using embedding = REPORT_EMBEDDING;
#ifdef REPORT_KV
// keys and values cached in format REPORT_KV (nn::quantized_kv_cache) instead of float
struct kv_attention {
  using rope = nn::rotary;
  using state = nn::quantized_kv_cache<REPORT_KV>;
};
struct report_spec : models::llama<weights, embedding, true> {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::attention<kv_attention>, nn::gated_mlp<simd::act::silu>>;
};
using model = models::decoder_lm<report_spec>;
constexpr const char* kv_name = REPORT_KV::name;
#else
using model = models::decoder_lm<models::llama<weights, embedding, true>>;
constexpr const char* kv_name = "f32";
#endif

namespace {
[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "quant_report: %s\n", what.c_str());
  std::exit(1);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// -log softmax(row)[target], in double
double nll(const float* row, std::int64_t vocab, std::int32_t target) {
  const float mx = *std::max_element(row, row + vocab);
  double sum = 0;
  for (std::int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
  return std::log(sum) + mx - row[target];
}

// The layers' linears in format W: their packed bytes and weight count.
template <class W, class Stack>
std::pair<std::int64_t, std::int64_t> layer_weights(Stack& stack) {
  std::int64_t bytes = 0, count = 0;
  stack.visit(
      [&](const std::string&, auto& p) {
        if constexpr (quant::is_matrix<std::decay_t<decltype(p)>>)
          if constexpr (std::is_same_v<typename std::decay_t<decltype(p)>::format, W>) {
            bytes += static_cast<std::int64_t>(p.size_bytes());
            count += p.numel();
          }
      },
      "");
  return {bytes, count};
}

struct embedded {
  std::vector<std::vector<float>> rows;  // one pooled embedding per sentence
  double seconds = 0;                    // in forward passes and pooling
  std::int64_t layer_bytes = 0, layer_count = 0;
};

// The sentence embeddings of ids (tokenized, truncated) by the directory's encoder, its linears in
// format W, batch sentences per forward pass (each padded to its batch's longest).
template <class W>
embedded embed(const io::hf_directory& dir, const models::sentence_pooling& pooling,
               const std::vector<std::vector<std::int32_t>>& ids, std::int64_t batch) {
  auto m = models::load_bert<W, quant::f32>(dir);
  embedded out;
  std::tie(out.layer_bytes, out.layer_count) = layer_weights<W>(m.stack);
  const std::int64_t N = static_cast<std::int64_t>(ids.size()), d = m.config.d_model();
  for (std::int64_t b0 = 0; b0 < N; b0 += batch) {
    const std::int64_t n = std::min(batch, N - b0);
    std::int64_t longest = 1;
    for (std::int64_t i = 0; i < n; ++i) longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(ids[static_cast<std::size_t>(b0 + i)].size()));
    tensor<std::int32_t> bid(shape{n, longest}, 0), blen(shape{n});  // [n, longest], [n]
    for (std::int64_t i = 0; i < n; ++i) {
      const auto& t = ids[static_cast<std::size_t>(b0 + i)];
      blen(i) = static_cast<std::int32_t>(t.size());
      std::copy(t.begin(), t.end(), &bid(i, 0));
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto hidden = m.forward(bid, blen);  // [n, longest, d]
    tensor<float> e(shape{n, pooling.dim(d)});  // [n, pooled]
    models::sentence_embedding(hidden, blen, pooling, e);
    out.seconds += seconds_since(t0);
    for (std::int64_t i = 0; i < n; ++i) out.rows.emplace_back(&e(i, 0), &e(i, 0) + e.dim(1));
  }
  return out;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

// The encoder report: mean and least cosine of the REPORT_WEIGHTS model's embeddings to the f32
// model's, and the REPORT_WEIGHTS model's speed.
nlohmann::json encoder_report(const std::string& dir_path, const std::string& sentences_path, std::int64_t max_tokens,
                              std::int64_t batch) {
  const io::hf_directory dir(dir_path);
  const auto pooling = models::read_sentence_pooling(dir);
  const auto tok_path = dir.tokenizer_path();
  if (!tok_path) die("'" + dir_path + "' has no tokenizer.json");
  const auto tok = text::tokenizer::from_file(*tok_path);
  std::ifstream in(sentences_path);
  if (!in) die("cannot read " + sentences_path);
  std::vector<std::vector<std::int32_t>> ids;
  std::int64_t tokens = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto t = tok.encode(line);
    if (static_cast<std::int64_t>(t.size()) > max_tokens) {  // keep the closing [SEP]
      const auto last = t.back();
      t.resize(static_cast<std::size_t>(max_tokens));
      t.back() = last;
    }
    tokens += static_cast<std::int64_t>(t.size());
    ids.push_back(std::move(t));
  }
  if (ids.empty()) die("'" + sentences_path + "' has no sentences");
  const auto ref = embed<quant::f32>(dir, pooling, ids, batch);
  const auto got = embed<weights>(dir, pooling, ids, batch);
  double sum = 0, least = 1;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const double c = cosine(ref.rows[i], got.rows[i]);
    sum += c;
    least = std::min(least, c);
  }
  const double n = static_cast<double>(ids.size());
  return {{"format", weights::name},
          {"bits_per_weight", weights::bits_per_weight},
          {"layer_weight_bytes", got.layer_bytes},
          {"layer_weights", got.layer_count},
          {"sentences", ids.size()},
          {"tokens", tokens},
          {"mean_cosine", sum / n},
          {"min_cosine", least},
          {"tok_s", static_cast<double>(tokens) / got.seconds},
          {"f32_tok_s", static_cast<double>(tokens) / ref.seconds},
          {"threads", num_threads()}};
}
}  // namespace

int main(int argc, char** argv) {
  std::string model_path, text_path, encoder_dir, sentences_path;
  std::int64_t ctx = 512, max_chunks = 0, decode_tokens = 64, max_tokens = 128, batch = 32;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model_path = value();
    else if (a == "--text") text_path = value();
    else if (a == "--ctx") ctx = std::stoll(value());
    else if (a == "--chunks") max_chunks = std::stoll(value());
    else if (a == "--threads") threads = std::stoi(value());
    else if (a == "--decode") decode_tokens = std::stoll(value());
    else if (a == "--encoder") encoder_dir = value();
    else if (a == "--sentences") sentences_path = value();
    else if (a == "--max-tokens") max_tokens = std::stoll(value());
    else if (a == "--batch") batch = std::stoll(value());
    else die("unknown option " + a);
  }
  if (threads > 0) set_num_threads(threads);
  if (!encoder_dir.empty()) {
    if (sentences_path.empty() || max_tokens < 2 || batch < 1) die("usage: quant_report --encoder DIR --sentences FILE [--max-tokens N] [--batch N]");
    try {
      std::printf("%s\n", encoder_report(encoder_dir, sentences_path, max_tokens, batch).dump().c_str());
    } catch (const std::exception& e) {
      die(e.what());
    }
    return 0;
  }
  if (model_path.empty() || text_path.empty()) die("usage: quant_report --model FILE.gguf --text FILE [--ctx N] ...");
  if (ctx < 4) die("--ctx must be at least 4");

  try {
    const io::gguf_file f(model_path);
    if (!models::gguf_tied_head(f)) die("'" + model_path + "' has an output.weight: this report runs tied-embedding models");
    const auto t_load = std::chrono::steady_clock::now();
    model m(models::llama_config(f));
    io::load_gguf(m, f, f.get_string("general.architecture") == "qwen2" ? io::gguf_qwen2() : io::gguf_llama());
    const double load_s = seconds_since(t_load);
    const auto [weight_bytes, weight_count] = layer_weights<weights>(m.stack);  // the linears under test

    const auto tok = text::tokenizer_from_gguf(f);
    std::ifstream in(text_path, std::ios::binary);
    if (!in) die("cannot read " + text_path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<std::int32_t> ids = tok.encode(ss.str(), /*add_special_tokens=*/true);
    const bool add_bos = f.find_metadata("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token");
    const auto bos = f.find_metadata("tokenizer.ggml.bos_token_id") ? static_cast<std::int32_t>(f.get_int("tokenizer.ggml.bos_token_id")) : -1;
    std::int64_t chunks = static_cast<std::int64_t>(ids.size()) / ctx;
    if (max_chunks > 0) chunks = std::min(chunks, max_chunks);
    if (chunks < 1) die("the text has " + std::to_string(ids.size()) + " tokens, fewer than --ctx");

    const std::int64_t vocab = m.config.vocab;
    double sum = 0;
    std::int64_t count = 0;
    double prefill_s = 0;
    tensor<std::int32_t> chunk(shape{1, ctx});
    for (std::int64_t c = 0; c < chunks; ++c) {
      std::copy(ids.begin() + c * ctx, ids.begin() + (c + 1) * ctx, chunk.data());
      if (add_bos && bos >= 0) chunk(0, 0) = bos;
      const auto t0 = std::chrono::steady_clock::now();
      auto state = m.make_state(1, ctx);  // the chunk's keys and values go through the cache under test
      const tensor<float> logits = m.forward(chunk, {}, &state);  // [1, ctx, vocab]
      prefill_s += seconds_since(t0);
      for (std::int64_t j = ctx / 2; j < ctx - 1; ++j) {
        sum += nll(logits.data() + j * vocab, vocab, ids[static_cast<std::size_t>(c * ctx + j + 1)]);
        ++count;
      }
      std::fprintf(stderr, "\rchunk %lld/%lld ppl %.4f", static_cast<long long>(c + 1), static_cast<long long>(chunks),
                   std::exp(sum / static_cast<double>(count)));
    }
    std::fprintf(stderr, "\n");

    // decode: a 16-token prompt, then decode_tokens steps of one token (greedy)
    double decode_s = 0;
    if (decode_tokens > 0) {
      auto state = m.make_state(1, 16 + decode_tokens + 1);
      tensor<std::int32_t> prompt(shape{1, 16}), one(shape{1, 1});
      std::copy(ids.begin(), ids.begin() + 16, prompt.data());
      tensor<float> last = m.forward(prompt, {}, &state);
      tensor<float> step(shape{1, 1, vocab});
      const float* row = last.data() + 15 * vocab;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::int64_t s = 0; s < decode_tokens; ++s) {
        one(0, 0) = static_cast<std::int32_t>(std::max_element(row, row + vocab) - row);
        m.forward(one, {}, state, step);
        row = step.data();
      }
      decode_s = seconds_since(t0);
    }

    nlohmann::json out{{"format", weights::name},
                       {"embedding", embedding::name},
                       {"bits_per_weight", weights::bits_per_weight},
                       {"kv_cache", kv_name},
                       {"kv_bytes_per_token", static_cast<double>(m.make_state(1, ctx).bytes()) / static_cast<double>(ctx)},
                       {"layer_weight_bytes", weight_bytes},
                       {"layer_weights", weight_count},
                       {"ctx", ctx},
                       {"chunks", chunks},
                       {"tokens", static_cast<std::int64_t>(ids.size())},
                       {"scored", count},
                       {"ppl", std::exp(sum / static_cast<double>(count))},
                       {"load_s", load_s},
                       {"prefill_tok_s", static_cast<double>(chunks * ctx) / prefill_s},
                       {"decode_tok_s", decode_s > 0 ? static_cast<double>(decode_tokens) / decode_s : 0.0},
                       {"threads", num_threads()}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    die(e.what());
  }
  return 0;
}
