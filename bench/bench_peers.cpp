// tformer's side of the peer comparison (tools/peers/): the workloads come from a JSON file that
// the harness writes beside the models it made for every engine, so tformer runs the very files
// and token ids the peers run. One benchmark per workload and thread count, "<name>/t:<threads>",
// real time in ms per iteration:
//
//   bench_peers --workloads WORK/workloads.json [--benchmark_filter=...] [--benchmark_format=json]
//   bench_peers --workloads WORK/workloads.json --dump DIR    (outputs of the "check" workloads)
//
// Workload kinds (paths relative to the workloads file; ids int32):
//   encoder    model: HF BERT directory; format "f32" | "int8" (int8_activations<int8_channel>:
//              int8 activations at every row count where AVX-512 VNNI is compiled (the packed
//              product), else up to ops::fused_rows_limit rows and dequantized float tiles
//              beyond); ids [B][S] right-padded; lengths [B]. One forward of the batch
//              (with "one_by_one": true, one forward per row of its real tokens, unpadded).
//              Dump: hidden states float32 [B, S, d].
//   prefill    model: GGUF (llama / qwen2); ids [T]. The prompt from an empty cache, the head on
//              its last position only (forward_last, as llama.cpp's llama-bench). Dump: logits
//              float32 [T, vocab] of every position (forward(): the layers are the timed ones;
//              the head runs on T rows there, on 1 in the timed step).
//   decode     model: GGUF; ids [context] fill the cache once; one iteration = one decode step
//              with `context` tokens cached (the slot is rewritten each time). Not dumped: the
//              prefill of the same file is the check.
//   translate  model: HF T5 directory; format as encoder; ids [B][S] padded with 0, lengths [B];
//              beams; new_tokens (no end id: every hypothesis has exactly new_tokens tokens);
//              decoder_start_id. One generate::run of the batch. Dump: int32 [B, new_tokens].
//   attention  seq, heads, head_dim: exact attention of q, k, v [1, seq, heads, head_dim] with
//              q[i] = sin(0.37 i), k[i] = sin(0.37 i + 1), v[i] = sin(0.37 i + 2) (flat index i),
//              no mask, scale 1/sqrt(head_dim). Dump: out float32 [1, seq, heads, head_dim].
// GGUF decoders keep the file's formats (F32, F16, BF16, Q8_0, Q4_0; Q4_1 layers with a Q8_0
// table as SmolLM2 ships); the block formats run with int8 activations, as llama.cpp does.
#include <nlohmann/json.hpp>
#include <tformer/generate/search.hpp>
#include <tformer/models/gguf_auto.hpp>
#include <tformer/tformer.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"

using namespace tformer;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using int8_weights = quant::int8_activations<quant::int8_channel>;

// ---- workload inputs -----------------------------------------------------------------------------

tensor<std::int32_t> ids_matrix(const json& w) {  // [B, S]
  const auto& rows = w.at("ids");
  const auto B = static_cast<std::int64_t>(rows.size()), S = static_cast<std::int64_t>(rows.at(0).size());
  tensor<std::int32_t> ids(shape{B, S});
  for (std::int64_t b = 0; b < B; ++b) {
    if (static_cast<std::int64_t>(rows[b].size()) != S) throw std::runtime_error(w.at("name").get<std::string>() + ": ragged ids");
    for (std::int64_t s = 0; s < S; ++s) ids(b, s) = rows[b][s].get<std::int32_t>();
  }
  return ids;
}

tensor<std::int32_t> lengths_of(const json& w, std::int64_t B) {  // [B]
  tensor<std::int32_t> lengths(shape{B});
  for (std::int64_t b = 0; b < B; ++b) lengths(b) = w.at("lengths").at(b).get<std::int32_t>();
  return lengths;
}

tensor<std::int32_t> ids_row(const json& w) {  // [1, T]
  const auto& ids = w.at("ids");
  tensor<std::int32_t> t(shape{1, static_cast<std::int64_t>(ids.size())});
  for (std::int64_t i = 0; i < t.dim(1); ++i) t(0, i) = ids[i].get<std::int32_t>();
  return t;
}

// ---- outputs for --dump ---------------------------------------------------------------------------

template <class T>
void write_output(const fs::path& dir, const std::string& name, const T* data, const std::vector<std::int64_t>& dims) {
  std::string file;  // the name with each '/' as "__"
  for (const char c : name) file += c == '/' ? std::string("__") : std::string(1, c);
  std::size_t n = 1;
  for (auto d : dims) n *= static_cast<std::size_t>(d);
  std::ofstream bin(dir / (file + ".bin"), std::ios::binary);
  bin.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
  std::ofstream(dir / (file + ".json")) << json{{"dtype", std::is_same_v<T, float> ? "float32" : "int32"}, {"shape", dims}}.dump()
                                        << "\n";
  if (!bin) throw std::runtime_error("cannot write " + (dir / (file + ".bin")).string());
}

std::vector<std::int64_t> dims_of(const tensor<float>& t) {
  std::vector<std::int64_t> d;
  for (std::int64_t i = 0; i < t.rank(); ++i) d.push_back(t.dim(i));
  return d;
}

// ---- a workload: its timed step and its checked output ---------------------------------------------

struct runner {
  std::function<void()> step;                  // one timed iteration
  std::function<void(const fs::path&)> dump;  // writes the checked output
  double items = 1;                            // tokens (or sequences) per iteration, for items/s
};

// Encoders ---------------------------------------------------------------------------------------------

template <class W>
runner encoder_runner(const json& w, const fs::path& model_dir) {
  auto model = std::make_shared<models::basic_hf_encoder<W>>(models::open_encoder<W>(model_dir));
  auto ids = std::make_shared<tensor<std::int32_t>>(ids_matrix(w));
  auto lengths = std::make_shared<tensor<std::int32_t>>(lengths_of(w, ids->dim(0)));
  auto ws = std::make_shared<workspace>();
  const std::string name = w.at("name");
  runner r;
  if (w.value("one_by_one", false)) {  // each row alone, unpadded: what a padding-free batch must not exceed
    auto rows = std::make_shared<std::vector<tensor<std::int32_t>>>();
    for (std::int64_t b = 0; b < ids->dim(0); ++b) {
      tensor<std::int32_t> row(shape{1, (*lengths)(b)});  // [1, lengths[b]]
      std::copy_n(ids->data() + b * ids->dim(1), (*lengths)(b), row.data());
      rows->push_back(std::move(row));
    }
    r.step = [=] {
      std::visit([&](const auto& m) {
        for (const auto& row : *rows) benchmark::DoNotOptimize(m.forward(row, {}, ws.get()).data());
      }, *model);
    };
  } else {
    r.step = [=] {
      std::visit([&](const auto& m) { benchmark::DoNotOptimize(m.forward(*ids, *lengths, ws.get()).data()); }, *model);
    };
  }
  r.dump = [=](const fs::path& dir) {
    std::visit([&](const auto& m) {
      const auto h = m.forward(*ids, *lengths);
      write_output(dir, name, h.data(), dims_of(h));
    }, *model);
  };
  double tokens = 0;
  for (std::int64_t b = 0; b < lengths->numel(); ++b) tokens += (*lengths)(b);
  r.items = tokens;
  return r;
}

// GGUF decoders: prefill and decode ---------------------------------------------------------------------

template <class Model>
runner decoder_runner(const json& w, std::shared_ptr<const Model> model) {
  const std::string kind = w.at("kind"), name = w.at("name");
  auto ids = std::make_shared<tensor<std::int32_t>>(ids_row(w));  // [1, T]
  const std::int64_t T = ids->dim(1), vocab = model->config.vocab;
  runner r;
  if (kind == "prefill") {
    auto state = std::make_shared<typename Model::state_type>(model->make_state(1, T));
    auto logits = std::make_shared<tensor<float>>(shape{1, vocab});  // [1, vocab]: the last position's
    r.step = [=] {
      state->lengths(0) = 0;
      model->forward_last(*ids, {}, *state, *logits);
      benchmark::DoNotOptimize(logits->data());
    };
    r.dump = [=](const fs::path& dir) {
      const auto all = model->forward(*ids);  // [1, T, vocab]
      write_output(dir, name, all.data(), {T, vocab});
    };
    r.items = static_cast<double>(T);
  } else {
    auto state = std::make_shared<typename Model::state_type>(model->make_state(1, T + 1));
    (void)model->forward(*ids, {}, state.get());  // the context, once
    auto next = std::make_shared<tensor<std::int32_t>>(shape{1, 1}, (*ids)(0, T - 1));
    auto logits = std::make_shared<tensor<float>>(shape{1, 1, vocab});
    r.step = [=] {
      state->lengths(0) = static_cast<std::int32_t>(T);  // rewrite the same slot
      model->forward(*next, {}, *state, *logits);
      benchmark::DoNotOptimize(logits->data());
    };
    r.dump = [name](const fs::path&) {
      throw std::runtime_error("workload '" + name + "': decode workloads have no checked output (check the prefill)");
    };
  }
  return r;
}

template <class Spec>
runner load_decoder(const json& w, const io::gguf_file& f) {
  using M = models::decoder_lm<Spec>;
  // One model per file, shared by its prefill and decode workloads.
  static std::map<std::string, std::shared_ptr<const M>> cache;
  auto& m = cache[f.path()];
  if (!m) {
    auto loaded = std::make_shared<M>(models::llama_config(f));
    const auto arch = f.get_string("general.architecture");
    io::load_gguf(*loaded, f, arch == "qwen2" ? io::gguf_qwen2() : io::gguf_llama());
    m = loaded;
  }
  return decoder_runner<M>(w, m);
}

std::string tensor_type(const io::gguf_file& f, const std::string& name) {
  const auto* t = f.find(name);
  return t ? t->type_name : "";
}

runner gguf_runner(const json& w, const fs::path& path) {
  const io::gguf_file f(path);
  const std::string layers = models::detail::gguf_layer_type(f, models::llama_config(f).layers);
  const std::string table = tensor_type(f, "token_embd.weight");
  const bool tied = models::gguf_tied_head(f);
  const std::string head = tied ? table : tensor_type(f, "output.weight");
  using namespace quant;
  auto is = [&](const char* l, const char* t) { return layers == l && table == t && head == t; };
  if (is("F32", "F32") && !tied) return load_decoder<models::llama<f32, f32, false>>(w, f);
  if (is("F16", "F16") && !tied) return load_decoder<models::llama<quant::f16, quant::f16, false>>(w, f);
  if (is("BF16", "BF16") && !tied) return load_decoder<models::llama<quant::bf16, quant::bf16, false>>(w, f);
  if (is("Q8_0", "Q8_0") && !tied) return load_decoder<models::llama<int8_activations<q8_0>, int8_activations<q8_0>, false>>(w, f);
  if (is("Q4_0", "Q4_0") && !tied) return load_decoder<models::llama<int8_activations<q4_0>, int8_activations<q4_0>, false>>(w, f);
  if (is("Q4_1", "Q8_0") && tied) return load_decoder<models::llama<int8_activations<q4_1>, int8_activations<q8_0>, true>>(w, f);
  throw std::runtime_error(path.string() + ": layers " + layers + ", token table " + table + ", head " + head +
                           (tied ? " (tied)" : "") + ": no instantiation in bench_peers for these formats");
}

// Translation ---------------------------------------------------------------------------------------------

template <class W>
runner translate_runner(const json& w, const fs::path& model_dir) {
  auto model = std::make_shared<models::basic_hf_seq2seq<W>>(models::open_seq2seq<W>(model_dir));
  const auto ids = ids_matrix(w);
  const auto lengths = lengths_of(w, ids.dim(0));
  auto sources = std::make_shared<std::vector<std::vector<std::int32_t>>>();
  for (std::int64_t b = 0; b < ids.dim(0); ++b) sources->emplace_back(ids.data() + b * ids.dim(1), ids.data() + b * ids.dim(1) + lengths(b));
  generate::options o;
  o.max_new_tokens = w.at("new_tokens").get<std::int64_t>();
  o.num_beams = w.at("beams").get<std::int64_t>();
  o.decoder_start_id = w.value("decoder_start_id", 0);
  o.eos_ids = {};  // exactly new_tokens tokens per source
  const std::string name = w.at("name");
  auto run = [=] { return std::visit([&](const auto& m) { return generate::run(m, *sources, o); }, *model); };
  runner r;
  r.step = [=] { benchmark::DoNotOptimize(run().data()); };
  r.dump = [=](const fs::path& dir) {
    const auto out = run();
    std::vector<std::int32_t> tokens;
    for (const auto& hyps : out) {
      auto t = hyps.at(0).tokens;
      t.resize(static_cast<std::size_t>(o.max_new_tokens), -1);
      tokens.insert(tokens.end(), t.begin(), t.end());
    }
    write_output(dir, name, tokens.data(), {static_cast<std::int64_t>(out.size()), o.max_new_tokens});
  };
  r.items = static_cast<double>(sources->size() * static_cast<std::size_t>(o.max_new_tokens));
  return r;
}

// Attention -----------------------------------------------------------------------------------------------

runner attention_runner(const json& w) {
  const std::int64_t S = w.at("seq"), H = w.at("heads"), D = w.at("head_dim");
  auto make = [&](double offset) {
    tensor<float> t(shape{1, S, H, D});  // [1, S, H, D]
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + offset));
    return t;
  };
  auto q = std::make_shared<tensor<float>>(make(0.0)), k = std::make_shared<tensor<float>>(make(1.0)),
       v = std::make_shared<tensor<float>>(make(2.0));
  auto out = std::make_shared<tensor<float>>(shape{1, S, H, D});
  const std::string name = w.at("name");
  runner r;
  r.step = [=] {
    ops::attention(*q, *k, *v, *out);
    benchmark::DoNotOptimize(out->data());
  };
  r.dump = [=](const fs::path& dir) {
    ops::attention(*q, *k, *v, *out);
    write_output(dir, name, out->data(), dims_of(*out));
  };
  r.items = 4.0 * static_cast<double>(S * S * H * D);  // flops: QK^T and PV
  return r;
}

// ---- the workloads file --------------------------------------------------------------------------------

runner make_runner(const json& w, const fs::path& base) {
  const std::string kind = w.at("kind");
  const bool int8 = w.value("format", std::string("f32")) == "int8";
  if (kind == "encoder") {
    const auto dir = base / w.at("model").get<std::string>();
    return int8 ? encoder_runner<int8_weights>(w, dir) : encoder_runner<quant::f32>(w, dir);
  }
  if (kind == "prefill" || kind == "decode") return gguf_runner(w, base / w.at("model").get<std::string>());
  if (kind == "translate") {
    const auto dir = base / w.at("model").get<std::string>();
    return int8 ? translate_runner<int8_weights>(w, dir) : translate_runner<quant::f32>(w, dir);
  }
  if (kind == "attention") return attention_runner(w);
  throw std::runtime_error("workload '" + w.at("name").get<std::string>() + "': unknown kind '" + kind + "'");
}

void run_workload(benchmark::State& state, std::shared_ptr<runner> r, int threads) {
  set_num_threads(threads);
  r->step();  // warm-up: the pool, the workspace and the caches
  for (auto _ : state) r->step();
  state.counters["items/s"] = benchmark::Counter(r->items, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(num_threads());
}

// Removes "--name=value" / "--name value" from argv; returns the value ("" when absent).
std::string take_flag(int& argc, char** argv, const std::string& flag) {
  std::string value;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int used = 0;
    if (a == flag && i + 1 < argc) value = argv[i + 1], used = 2;
    else if (a.rfind(flag + "=", 0) == 0) value = a.substr(flag.size() + 1), used = 1;
    if (used) {
      for (int j = i; j + used <= argc; ++j) argv[j] = argv[j + used];
      argc -= used;
      break;
    }
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string file = take_flag(argc, argv, "--workloads"), dump = take_flag(argc, argv, "--dump");
  if (file.empty()) {
    std::fprintf(stderr, "usage: bench_peers --workloads WORK/workloads.json [--dump DIR] [benchmark flags]\n"
                         "(tools/peers/run writes the workloads and the models; see tools/peers/README.md)\n");
    return 2;
  }
  try {
    json all;
    std::ifstream(file) >> all;
    const fs::path base = fs::path(file).parent_path();
    if (!dump.empty()) {  // a workload that fails leaves no output (its check says so); the others go on
      fs::create_directories(dump);
      int failed = 0;
      for (const auto& w : all.at("workloads"))
        if (w.value("check", false)) {
          std::fprintf(stderr, "bench_peers: %s\n", w.at("name").get<std::string>().c_str());
          try {
            make_runner(w, base).dump(dump);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_peers: %s: %s\n", w.at("name").get<std::string>().c_str(), e.what());
            ++failed;
          }
        }
      if (failed) std::fprintf(stderr, "bench_peers: %d checked workload(s) failed\n", failed);
      return 0;
    }
    // Models load when a benchmark first runs (a filter that selects one workload loads one model).
    for (const auto& w : all.at("workloads")) {
      auto shared = std::make_shared<std::shared_ptr<runner>>();
      for (const auto& t : w.at("threads")) {
        const int threads = t.get<int>();
        benchmark::RegisterBenchmark((w.at("name").get<std::string>() + "/t:" + std::to_string(threads)).c_str(),
                                     [w, base, shared, threads](benchmark::State& state) {
                                       try {
                                         if (!*shared) *shared = std::make_shared<runner>(make_runner(w, base));
                                         run_workload(state, *shared, threads);
                                       } catch (const std::exception& e) {
                                         state.SkipWithError(e.what());
                                       }
                                     })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_peers: %s\n", e.what());
    return 1;
  }
  bench::add_common_context();
  return bench::run_main(argc, argv);
}
