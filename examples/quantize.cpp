// tformer-quantize: quantizes the layers' linears of a decoder-only GGUF model (llama or qwen2
// architecture) to a ggml block type by GPTQ on calibration text (quant/gptq.hpp), or by
// round-to-nearest, and writes a GGUF file that tformer and llama.cpp load as they are: the input's
// metadata and vocabulary, the layers' linears in the new type, every other tensor copied as it is.
//
//   tformer-quantize --model SmolLM2-135M-Instruct.Q4_1.gguf --calibration text.txt --type q4_0
//       --output smollm2-q4_0-gptq.gguf
//
// Calibration: the text is tokenized whole by the model's own vocabulary and cut into chunks of
// --ctx tokens (BOS first when the vocabulary adds one); the float model (the file's weights
// dequantized) runs each chunk, and every linear's inputs go into its hessian. GPTQ then quantizes
// each linear on its own hessian ("non-sequential": all inputs come from the float model).
#include <cstdio>
#include <deque>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <tformer/io/gguf.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/quant/gptq.hpp>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-quantize",
    "usage: tformer-quantize --model FILE.gguf --type q4_0|q4_1|q5_0|q5_1|q8_0 --output FILE.gguf "
    "[--method gptq|rtn] [--calibration FILE] [--ctx N] [--chunks N] [--act-order] [--damp D] [--threads N]",
    "\n"
    "Quantizes the layers' linears (attention q, k, v, output; feed-forward gate, up, down) of a llama\n"
    "or qwen2 GGUF model to a ggml block type and writes a GGUF file; every other tensor and all\n"
    "metadata are copied as they are.\n"
    "\n"
    "  --model FILE          the input GGUF file (any type tformer reads: F32, F16, Q8_0, Q4_1, ...)\n"
    "  --type T              q4_0, q4_1, q5_0, q5_1 or q8_0\n"
    "  --output FILE         the GGUF file to write\n"
    "  --method M            gptq (the default: needs --calibration) or rtn (round to nearest)\n"
    "  --calibration FILE    text for GPTQ's statistics, tokenized by the model's vocabulary\n"
    "  --ctx N               tokens per calibration chunk (default 512)\n"
    "  --chunks N            calibration chunks at most (default 32)\n"
    "  --act-order           GPTQ takes each linear's inputs in order of decreasing energy\n"
    "  --damp D              GPTQ's dampening, a fraction of the mean diagonal (default 0.01)\n"
    "  --threads N           number of threads\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "It prints, per linear role, the layer output error of the result (mean |(W - Q) x|^2 over the\n"
    "calibration inputs) beside round-to-nearest's. Exit status: 0 done, 1 a bad file or model, 2 a\n"
    "bad command line.\n"};

using namespace tformer;

struct settings {
  std::string model, type, output, method = "gptq", calibration;
  std::int64_t ctx = 512, chunks = 32;
  quant::gptq_options gptq;
};

// llama.cpp's LLAMA_FTYPE_MOSTLY_* for a file whose linears are all of one type.
std::uint32_t file_type_of(const std::string& type) {
  if (type == "q4_0") return 2;
  if (type == "q4_1") return 3;
  if (type == "q8_0") return 7;
  if (type == "q5_0") return 8;
  return 9;  // q5_1
}

// The calibration chunks: the text's tokens cut into chunks of ctx, BOS first when the vocabulary adds one.
std::vector<tensor<std::int32_t>> calibration_chunks(const io::gguf_file& f, const settings& s) {
  const auto tok = text::tokenizer_from_gguf(f);
  std::ifstream in(s.calibration, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + s.calibration + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<std::int32_t> ids = tok.encode(ss.str(), /*add_special_tokens=*/true);
  const bool add_bos = f.find_metadata("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token");
  const auto bos = f.find_metadata("tokenizer.ggml.bos_token_id") ? static_cast<std::int32_t>(f.get_int("tokenizer.ggml.bos_token_id")) : -1;
  const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()) / s.ctx, s.chunks);
  if (n < 1)
    throw std::runtime_error("'" + s.calibration + "' has " + std::to_string(ids.size()) + " tokens, fewer than --ctx " +
                             std::to_string(s.ctx));
  std::vector<tensor<std::int32_t>> chunks;
  for (std::int64_t c = 0; c < n; ++c) {
    tensor<std::int32_t> chunk(shape{1, s.ctx});
    std::copy(ids.begin() + c * s.ctx, ids.begin() + (c + 1) * s.ctx, chunk.data());
    if (add_bos && bos >= 0) chunk(0, 0) = bos;
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

// gguf tensor name -> its hessian, from the float model run on the calibration chunks.
template <bool Tied>
std::map<std::string, quant::hessian> calibrate(const io::gguf_file& f, const io::name_map& map,
                                                const std::vector<tensor<std::int32_t>>& chunks) {
  using model = models::decoder_lm<models::llama<quant::observed<quant::f32>, quant::f32, Tied>>;
  model m(models::llama_config(f));
  io::load_gguf(m, f, map);
  quant::hessians hs(m);
  {
    cli::progress bar("calibrating");
    const quant::observe_linears scope(hs);
    tensor<float> x(shape{1, chunks.front().dim(1), m.config.d_model()});  // [1, ctx, d]
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      m.embed.forward(chunks[c].view(), {}, x.view());
      m.forward_hidden(x.view());  // the head is not a layer linear: skip it
      bar.update(static_cast<std::int64_t>(c + 1), static_cast<std::int64_t>(chunks.size()));
    }
  }
  std::map<std::string, quant::hessian> out;
  for (const auto& [name, h] : hs.all())
    if (const auto src = map.resolve(name)) out.emplace(src->name, h);
  return out;
}

// The layers' linears that this program quantizes, by their GGUF names.
bool is_layer_linear(const std::string& name) {
  static const std::regex re(R"(blk\.[0-9]+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight)");
  return std::regex_match(name, re);
}

std::string role_of(const std::string& name) {
  const auto a = name.find('.', 4), b = name.rfind('.');
  return name.substr(a + 1, b - a - 1);
}

template <quant::requantizable_format F>
int quantize(const io::gguf_file& f, const settings& s, const std::map<std::string, quant::hessian>& hessians) {
  io::gguf_writer w;
  bool have_file_type = false;
  for (const auto& kv : f.metadata()) {
    if (kv.key == "general.file_type") {
      w.add(kv.key, file_type_of(s.type));
      have_file_type = true;
    } else {
      w.add(kv.key, kv.value);
    }
  }
  if (!have_file_type) w.add("general.file_type", file_type_of(s.type));

  struct totals {
    double result = 0, rtn = 0;
    int count = 0;
  };
  std::map<std::string, totals> by_role;
  std::deque<quant::matrix<F>> kept;  // what the writer refers to until it writes
  std::int64_t targets = 0, done = 0;
  for (const auto& t : f.tensors()) targets += is_layer_linear(t.name);
  cli::progress bar(s.method == "gptq" ? "GPTQ" : "quantizing");
  for (const auto& t : f.tensors()) {
    if (!is_layer_linear(t.name) || t.shape.size() != 2 || t.cols() % F::block_size != 0) {
      w.add_raw(t.name, t.ggml_type, t.shape, f.bytes(t));
      continue;
    }
    const tensor<float> weight = f.load_float(t.name);  // [rows, cols] in the file's row order
    quant::matrix<F> rtn = quant::matrix<F>::quantize(weight.view());
    if (s.method == "gptq") {
      const auto it = hessians.find(t.name);
      if (it == hessians.end()) throw std::runtime_error("no calibration statistics for tensor '" + t.name + "'");
      // GPTQ treats rows independently, so the file's row order (llama.cpp permutes q and k) does not matter.
      kept.push_back(quant::gptq<F>(weight.view(), it->second, s.gptq));
      auto& role = by_role[role_of(t.name)];
      role.result += quant::output_error(weight.view(), kept.back(), it->second);
      role.rtn += quant::output_error(weight.view(), rtn, it->second);
      ++role.count;
    } else {
      kept.push_back(std::move(rtn));
    }
    w.add_tensor(t.name, kept.back());
    bar.update(++done, targets);
  }
  bar.done();
  for (const auto& [role, r] : by_role)
    std::printf("%-12s %2d linears  output error: GPTQ %.4g, round-to-nearest %.4g (ratio %.3f)\n", role.c_str(), r.count,
                r.result / r.count, r.rtn / r.count, r.result / r.rtn);
  w.write(s.output);
  std::printf("wrote %s: %lld linears in %s (%s)\n", s.output.c_str(), static_cast<long long>(done), F::name, s.method.c_str());
  return 0;
}

int run(cli::args& a) {
  settings s;
  int threads = 0;
  while (a.next()) {
    if (a.is("--model")) s.model = a.value();
    else if (a.is("--type")) s.type = a.value();
    else if (a.is("--output", "-o")) s.output = a.value();
    else if (a.is("--method")) s.method = a.value();
    else if (a.is("--calibration")) s.calibration = a.value();
    else if (a.is("--ctx")) s.ctx = a.integer(2);
    else if (a.is("--chunks")) s.chunks = a.integer(1);
    else if (a.is("--act-order")) s.gptq.act_order = true;
    else if (a.is("--damp")) s.gptq.damp = a.number();
    else if (a.is("--threads")) threads = static_cast<int>(a.integer(1));
    else a.unknown();
  }
  if (s.model.empty()) throw cli::usage_error("--model is required");
  if (s.output.empty()) throw cli::usage_error("--output is required");
  if (s.type != "q4_0" && s.type != "q4_1" && s.type != "q5_0" && s.type != "q5_1" && s.type != "q8_0")
    throw cli::usage_error(s.type.empty() ? "--type is required" : "--type must be q4_0, q4_1, q5_0, q5_1 or q8_0, not '" + s.type + "'");
  if (s.method != "gptq" && s.method != "rtn") throw cli::usage_error("--method must be gptq or rtn, not '" + s.method + "'");
  if (s.method == "gptq" && s.calibration.empty()) throw cli::usage_error("--method gptq needs --calibration FILE");
  if (!(s.gptq.damp >= 0)) throw cli::usage_error("--damp must be >= 0");
  if (threads > 0) set_num_threads(threads);

  const io::gguf_file f(s.model);
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2")
    throw std::runtime_error("'" + s.model + "': general.architecture is '" + arch + "'; tformer-quantize reads llama and qwen2");
  std::map<std::string, quant::hessian> hessians;
  if (s.method == "gptq") {
    const io::name_map map = arch == "qwen2" ? io::gguf_qwen2() : io::gguf_llama();
    const auto chunks = calibration_chunks(f, s);
    hessians = models::gguf_tied_head(f) ? calibrate<true>(f, map, chunks) : calibrate<false>(f, map, chunks);
    std::printf("calibrated on %zu chunks of %lld tokens\n", chunks.size(), static_cast<long long>(s.ctx));
  }
  if (s.type == "q4_0") return quantize<quant::q4_0>(f, s, hessians);
  if (s.type == "q4_1") return quantize<quant::q4_1>(f, s, hessians);
  if (s.type == "q5_0") return quantize<quant::q5_0>(f, s, hessians);
  if (s.type == "q5_1") return quantize<quant::q5_1>(f, s, hessians);
  return quantize<quant::q8_0>(f, s, hessians);
}
}  // namespace

int main(int argc, char** argv) { return cli::run(prog, argc, argv, run); }
