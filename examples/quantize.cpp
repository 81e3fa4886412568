// tformer-quantize: quantizes the layers' linears of a decoder-only model (llama, mistral or qwen2)
// to a ggml block type by GPTQ on calibration text (quant/gptq.hpp), or by round-to-nearest.
//
//   * A GGUF file in, a GGUF file out that tformer and llama.cpp load as they are: the input's
//     metadata and vocabulary, the layers' linears in the new type, every other tensor as it was.
//   * A Hugging Face model directory in (config.json, safetensors, tokenizer.json), a directory out
//     that tformer loads as it is: the input's other files (config, tokenizer, ...) copied, and
//     model.safetensors under the checkpoint's own names, the layers' linears packed in the new
//     type (U8 bytes named in the "tformer.formats" metadata, io/checkpoint.hpp), the rest float.
//     models::load_llama<quant::q4_0, quant::f32, Tied>(dir) loads it without conversion; a float
//     model loads it dequantized (tformer-generate --model DIR).
//
//   tformer-quantize --model SmolLM2-135M-Instruct.Q4_1.gguf --calibration text.txt --type q4_0
//       --output smollm2-q4_0-gptq.gguf
//   tformer-quantize --model Qwen2-0.5B --calibration text.txt --type q4_0 --output Qwen2-0.5B-q4_0
//
// Calibration: the text is tokenized whole by the model's own vocabulary and cut into chunks of
// --ctx tokens (BOS first when the vocabulary adds one); the float model (the file's weights
// dequantized) runs each chunk, and every linear's inputs go into its hessian. GPTQ then quantizes
// each linear on its own hessian ("non-sequential": all inputs come from the float model).
#include <cctype>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <tformer/io/checkpoint.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/quant/gptq.hpp>
#include <tformer/text/tokenizer.hpp>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-quantize",
    "usage: tformer-quantize --model FILE.gguf|DIR --type q4_0|q4_1|q5_0|q5_1|q8_0 --output FILE.gguf|DIR "
    "[--method gptq|rtn] [--calibration FILE] [--ctx N] [--chunks N] [--act-order] [--damp D] [--threads N]",
    "\n"
    "Quantizes the layers' linears (attention q, k, v, output; feed-forward gate, up, down) of a llama,\n"
    "mistral or qwen2 model to a ggml block type. A GGUF file in gives a GGUF file out, every other\n"
    "tensor and all metadata copied as they are. A Hugging Face model directory in gives a directory\n"
    "out: its other files copied, and model.safetensors with the linears packed (tformer loads it; other\n"
    "libraries do not read the packed tensors).\n"
    "\n"
    "  --model PATH          the input: a GGUF file (any type tformer reads: F32, F16, Q8_0, Q4_1, ...)\n"
    "                        or a model directory (config.json, safetensors, tokenizer.json)\n"
    "  --type T              q4_0, q4_1, q5_0, q5_1 or q8_0\n"
    "  --output PATH         the GGUF file, or for a directory input the directory, to write\n"
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

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The calibration chunks: the text's tokens ids cut into chunks of ctx, each starting with `first`
// (the vocabulary's BOS) when it is not -1.
std::vector<tensor<std::int32_t>> calibration_chunks(const std::vector<std::int32_t>& ids, std::int32_t first,
                                                     const settings& s) {
  const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(ids.size()) / s.ctx, s.chunks);
  if (n < 1)
    throw std::runtime_error("'" + s.calibration + "' has " + std::to_string(ids.size()) + " tokens, fewer than --ctx " +
                             std::to_string(s.ctx));
  std::vector<tensor<std::int32_t>> chunks;
  for (std::int64_t c = 0; c < n; ++c) {
    tensor<std::int32_t> chunk(shape{1, s.ctx});
    std::copy(ids.begin() + c * s.ctx, ids.begin() + (c + 1) * s.ctx, chunk.data());
    if (first >= 0) chunk(0, 0) = first;
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

std::vector<tensor<std::int32_t>> calibration_chunks(const io::gguf_file& f, const settings& s) {
  const auto tok = text::tokenizer_from_gguf(f);
  const bool add_bos = f.find_metadata("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token");
  const auto bos = f.find_metadata("tokenizer.ggml.bos_token_id") ? static_cast<std::int32_t>(f.get_int("tokenizer.ggml.bos_token_id")) : -1;
  return calibration_chunks(tok.encode(read_text(s.calibration), /*add_special_tokens=*/true), add_bos ? bos : -1, s);
}

// With a tokenizer.json: the special token its post-processor puts before a text (BOS), if one.
std::vector<tensor<std::int32_t>> calibration_chunks(const text::tokenizer& tok, const settings& s) {
  const auto empty = tok.encode("", /*add_special_tokens=*/true);
  return calibration_chunks(tok.encode(read_text(s.calibration), /*add_special_tokens=*/true), empty.size() == 1 ? empty[0] : -1, s);
}

// tformer parameter name -> its hessian: the float model m (its layers' linears observed) run on
// the calibration chunks.
template <class Model>
std::map<std::string, quant::hessian> calibrate(Model& m, const std::vector<tensor<std::int32_t>>& chunks) {
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
  std::printf("calibrated on %zu chunks of %lld tokens\n", chunks.size(), static_cast<long long>(chunks.front().dim(1)));
  return hs.all();
}

// gguf tensor name -> its hessian, from the float model run on the calibration chunks.
template <bool Tied>
std::map<std::string, quant::hessian> calibrate(const io::gguf_file& f, const io::name_map& map,
                                                const std::vector<tensor<std::int32_t>>& chunks) {
  using model = models::decoder_lm<models::llama<quant::observed<quant::f32>, quant::f32, Tied>>;
  model m(models::llama_config(f));
  io::load_gguf(m, f, map);
  std::map<std::string, quant::hessian> out;
  for (const auto& [name, h] : calibrate(m, chunks))
    if (const auto src = map.resolve(name)) out.emplace(src->name, h);
  return out;
}

// Each role's output error, GPTQ's and round to nearest's, summed over its layers.
class error_summary {
 public:
  // name: a parameter or tensor name, "<prefix>.<layer number>.<role>.weight"
  void add(const std::string& name, double result, double rtn) {
    std::string role = name;
    const auto b = role.rfind(".weight");
    if (b != std::string::npos) role.erase(b);
    for (std::size_t at = 0; (at = role.find('.', at)) != std::string::npos; ++at) {
      std::size_t end = at + 1;
      while (end < role.size() && std::isdigit(static_cast<unsigned char>(role[end]))) ++end;
      if (end > at + 1 && end < role.size() && role[end] == '.') {  // ".<number>.": the role follows
        role.erase(0, end + 1);
        break;
      }
    }
    auto& r = by_role_[role];
    r.result += result;
    r.rtn += rtn;
    ++r.count;
  }
  void print() const {
    for (const auto& [role, r] : by_role_)
      std::printf("%-12s %2d linears  output error: GPTQ %.4g, round-to-nearest %.4g (ratio %.3f)\n", role.c_str(), r.count,
                  r.result / r.count, r.rtn / r.count, r.result / r.rtn);
  }

 private:
  struct totals {
    double result = 0, rtn = 0;
    int count = 0;
  };
  std::map<std::string, totals> by_role_;
};

// weight [rows, cols] in F: by GPTQ on its hessian (its error beside round to nearest's in
// summary), or rounded to nearest.
template <quant::requantizable_format F>
quant::matrix<F> quantize_one(const std::string& name, tensor_view<const float> weight, const settings& s,
                              const std::map<std::string, quant::hessian>& hessians, error_summary& summary) {
  quant::matrix<F> rtn = quant::matrix<F>::quantize(weight);
  if (s.method != "gptq") return rtn;
  const auto it = hessians.find(name);
  if (it == hessians.end()) throw std::runtime_error("no calibration statistics for tensor '" + name + "'");
  // GPTQ treats rows independently, so a file's row order (llama.cpp permutes q and k) does not matter.
  auto q = quant::gptq<F>(weight, it->second, s.gptq);
  summary.add(name, quant::output_error(weight, q, it->second), quant::output_error(weight, rtn, it->second));
  return q;
}

// The layers' linears that this program quantizes, by their GGUF names.
bool is_layer_linear(const std::string& name) {
  static const std::regex re(R"(blk\.[0-9]+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight)");
  return std::regex_match(name, re);
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

  error_summary summary;
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
    kept.push_back(quantize_one<F>(t.name, weight.view(), s, hessians, summary));
    w.add_tensor(t.name, kept.back());
    bar.update(++done, targets);
  }
  bar.done();
  summary.print();
  w.write(s.output);
  std::printf("wrote %s: %lld linears in %s (%s)\n", s.output.c_str(), static_cast<long long>(done), F::name, s.method.c_str());
  return 0;
}

// The files of a model directory that are not weights (config.json, tokenizer files, ...), which
// the output directory keeps.
bool is_weight_file(const std::filesystem::path& p) {
  const auto ext = p.extension().string(), name = p.filename().string();
  return ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".gguf" || ext == ".h5" ||
         ext == ".msgpack" || ext == ".onnx" || name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json";
}

// Directory in, directory out: the float model from the directory's checkpoint, calibrated on the
// text through its tokenizer.json; its layers' linears quantized into F, the rest copied.
template <quant::requantizable_format F, bool Tied>
int quantize_directory(const io::hf_directory& dir, const settings& s) {
  namespace fs = std::filesystem;
  const fs::path out_dir(s.output);
  std::error_code ec;
  if (fs::equivalent(out_dir, dir.root(), ec)) throw std::runtime_error("--output is the input directory '" + s.output + "'");
  if (fs::exists(out_dir) && !fs::is_directory(out_dir))
    throw std::runtime_error("--output '" + s.output + "' exists and is not a directory (a directory input writes a directory)");
  if (fs::is_directory(out_dir))
    for (const auto& e : fs::directory_iterator(out_dir))
      if (is_weight_file(e.path()) && e.path().filename() != "model.safetensors")
        throw std::runtime_error("--output '" + s.output + "' already holds weights (" + e.path().filename().string() +
                                 "); give a new or empty directory");

  const auto c = models::llama_config(dir);
  const auto& att = c.layer.attention;
  const std::int64_t head_dim = att.head_dim > 0 ? att.head_dim : c.d_model() / att.heads;
  for (const auto& [what, width] : {std::pair<const char*, std::int64_t>{"hidden_size", c.d_model()},
                                    {"num_attention_heads x head_dim", att.heads * head_dim},
                                    {"intermediate_size", c.layer.ffn.d_ff}})
    if (width % F::block_size != 0)
      throw std::runtime_error("'" + dir.path() + "': " + what + " is " + std::to_string(width) + ", not a multiple of " + F::name +
                               "'s blocks of " + std::to_string(F::block_size) + " weights (the linears' rows must be whole blocks)");

  auto source = models::load_llama<quant::observed<quant::f32>, quant::f32, Tied>(dir);  // the float model
  std::map<std::string, quant::hessian> hessians;
  if (s.method == "gptq") {
    if (!dir.tokenizer_path()) throw std::runtime_error("'" + dir.path() + "' has no tokenizer.json (GPTQ tokenizes the calibration text)");
    hessians = calibrate(source, calibration_chunks(text::tokenizer::from_file(*dir.tokenizer_path()), s));
  }
  std::map<std::string, tensor<float>> floats;  // tformer name -> the float model's parameter
  source.visit(
      [&](const std::string& name, auto& p) {
        if constexpr (quant::is_matrix<std::decay_t<decltype(p)>>) floats.emplace(name, p.to_float());
        else floats.emplace(name, tensor<float>::copy_of(p.view()));
      },
      "");

  models::decoder_lm<models::llama<F, quant::f32, Tied>> out(c);
  error_summary summary;
  std::int64_t targets = 0, done = 0;
  out.visit([&](const std::string&, auto& p) { targets += std::is_same_v<std::decay_t<decltype(p)>, quant::matrix<F>>; }, "");
  {
    cli::progress bar(s.method == "gptq" ? "GPTQ" : "quantizing");
    out.visit(
        [&](const std::string& name, auto& p) {
          const tensor<float>& from = floats.at(name);
          if constexpr (std::is_same_v<std::decay_t<decltype(p)>, quant::matrix<F>>) {
            p = quantize_one<F>(name, from.view(), s, hessians, summary);
            bar.update(++done, targets);
          } else if constexpr (quant::is_matrix<std::decay_t<decltype(p)>>) {
            p.quantize_from(from.view());  // float formats: the same floats
          } else {
            std::copy(from.data(), from.data() + from.numel(), p.data());
          }
        },
        "");
  }
  summary.print();
  fs::create_directories(out_dir);
  for (const auto& e : fs::directory_iterator(dir.root()))
    if (e.is_regular_file() && !is_weight_file(e.path()))
      fs::copy_file(e.path(), out_dir / e.path().filename(), fs::copy_options::overwrite_existing);
  io::save_safetensors(out, out_dir / "model.safetensors", io::hf_llama(Tied));
  std::printf("wrote %s: %lld linears in %s (%s)\n", s.output.c_str(), static_cast<long long>(done), F::name, s.method.c_str());
  return 0;
}

template <quant::requantizable_format F>
int quantize_directory(const settings& s) {
  const io::hf_directory dir(s.model);
  const auto type = dir.fields().string("model_type");
  if (type != "llama" && type != "mistral" && type != "qwen2")
    dir.fields().fail("model_type", "is '" + type + "'; tformer-quantize reads llama, mistral and qwen2");
  return models::hf_tied_head(dir) ? quantize_directory<F, true>(dir, s) : quantize_directory<F, false>(dir, s);
}

template <quant::requantizable_format F>
int quantize_gguf(const settings& s) {
  const io::gguf_file f(s.model);
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2")
    throw std::runtime_error("'" + s.model + "': general.architecture is '" + arch + "'; tformer-quantize reads llama and qwen2");
  std::map<std::string, quant::hessian> hessians;
  if (s.method == "gptq") {
    const io::name_map map = arch == "qwen2" ? io::gguf_qwen2() : io::gguf_llama();
    const auto chunks = calibration_chunks(f, s);
    hessians = models::gguf_tied_head(f) ? calibrate<true>(f, map, chunks) : calibrate<false>(f, map, chunks);
  }
  return quantize<F>(f, s, hessians);
}

template <quant::requantizable_format F>
int quantize_any(const settings& s) {
  return std::filesystem::is_directory(s.model) ? quantize_directory<F>(s) : quantize_gguf<F>(s);
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

  if (s.type == "q4_0") return quantize_any<quant::q4_0>(s);
  if (s.type == "q4_1") return quantize_any<quant::q4_1>(s);
  if (s.type == "q5_0") return quantize_any<quant::q5_0>(s);
  if (s.type == "q5_1") return quantize_any<quant::q5_1>(s);
  return quantize_any<quant::q8_0>(s);
}
}  // namespace

int main(int argc, char** argv) { return cli::run(prog, argc, argv, run); }
