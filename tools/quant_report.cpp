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
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/quant/formats.hpp>
#include <tformer/nn/quantized_kv_cache.hpp>
#include <tformer/quant/hadamard.hpp>
#include <tformer/text/gguf_tokenizer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
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
}  // namespace

int main(int argc, char** argv) {
  std::string model_path, text_path;
  std::int64_t ctx = 512, max_chunks = 0, decode_tokens = 64;
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
    else die("unknown option " + a);
  }
  if (model_path.empty() || text_path.empty()) die("usage: quant_report --model FILE.gguf --text FILE [--ctx N] ...");
  if (ctx < 4) die("--ctx must be at least 4");
  if (threads > 0) set_num_threads(threads);

  try {
    const io::gguf_file f(model_path);
    if (!models::gguf_tied_head(f)) die("'" + model_path + "' has an output.weight: this report runs tied-embedding models");
    const auto t_load = std::chrono::steady_clock::now();
    model m(models::llama_config(f));
    io::load_gguf(m, f, f.get_string("general.architecture") == "qwen2" ? io::gguf_qwen2() : io::gguf_llama());
    const double load_s = seconds_since(t_load);
    std::int64_t weight_bytes = 0, weight_count = 0;  // the layers' linears (the formats under test)
    m.stack.visit(
        [&](const std::string&, auto& p) {
          if constexpr (quant::is_matrix<std::decay_t<decltype(p)>>)
            if constexpr (std::is_same_v<typename std::decay_t<decltype(p)>::format, weights>) {
              weight_bytes += static_cast<std::int64_t>(p.size_bytes());
              weight_count += p.numel();
            }
        },
        "");

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
