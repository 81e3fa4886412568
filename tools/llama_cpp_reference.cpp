// llama.cpp's own outputs for a GGUF decoder, for tools/make_llama_cpp_fixtures.py: each prompt is
// decoded in one batch with logits at every position, then NEW greedy tokens one at a time, and the
// full-vocabulary logits of every row are written out. CPU only, one thread, llama.cpp's default
// context (an F16 KV cache, flash attention as llama.cpp picks it: on here); for comparison,
// --f32-kv keeps K and V in F32, --no-fa turns flash attention off, --log prints llama.cpp's log.
//
// Developer machine only; built by hand against a libllama (here the llama.cpp vendored in
// llama-cpp-python 0.3.36, built with cmake into /tmp/llcpp/build):
//
//   LL=/tmp/llcpp/llama_cpp_python-0.3.36/vendor/llama.cpp
//   g++ -O2 -std=c++17 -I$LL/include -I$LL/ggml/include tools/llama_cpp_reference.cpp
//       -L/tmp/llcpp/build/bin -lllama -lggml -lggml-base -Wl,-rpath,/tmp/llcpp/build/bin
//       -o /tmp/llama_cpp_reference          (one command)
//   /tmp/llama_cpp_reference MODEL.gguf PROMPTS.txt NEW OUT.bin [--f32-kv] [--no-fa] [--log]
//
// PROMPTS.txt: one prompt a line, token ids separated by spaces. OUT.bin, little-endian:
//   "LLCR", int32 n_prompts, int32 n_vocab, int32 NEW, then per prompt:
//   int32 n, int32 ids[n], int32 greedy[NEW], float logits[n + NEW - 1][n_vocab]
// where logits row n - 1 + k is the row greedy token k was taken from (the prompt's last position
// for k = 0, then after feeding greedy token k - 1).
#include <llama.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {
[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "llama_cpp_reference: %s\n", what.c_str());
  std::exit(1);
}

void put_i32(std::FILE* f, std::int32_t v) { std::fwrite(&v, sizeof v, 1, f); }

bool log_all = false;

void quiet(ggml_log_level level, const char* text, void*) {
  if (log_all || level >= GGML_LOG_LEVEL_WARN) std::fputs(text, stderr);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) die("usage: llama_cpp_reference MODEL.gguf PROMPTS.txt NEW OUT.bin [--f32-kv] [--no-fa] [--log]");
  bool f32_kv = false, no_fa = false, log = false;
  for (int i = 5; i < argc; ++i) {
    if (std::strcmp(argv[i], "--f32-kv") == 0) f32_kv = true;
    else if (std::strcmp(argv[i], "--no-fa") == 0) no_fa = true;
    else if (std::strcmp(argv[i], "--log") == 0) log = true;
    else die(std::string("unknown option ") + argv[i]);
  }
  const int n_new = std::atoi(argv[3]);
  if (n_new < 1) die("NEW must be at least 1");

  std::vector<std::vector<llama_token>> prompts;
  {
    std::ifstream in(argv[2]);
    if (!in) die(std::string("cannot read ") + argv[2]);
    for (std::string line; std::getline(in, line);) {
      std::istringstream ls(line);
      std::vector<llama_token> p;
      for (llama_token t; ls >> t;) p.push_back(t);
      if (!p.empty()) prompts.push_back(std::move(p));
    }
  }
  if (prompts.empty()) die("no prompts");
  std::size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.size());

  log_all = log;
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  // no repacked or AMX weight buffers: this machine reports AMX but SIGILLs on its tile
  // instructions, and the plain CPU path is the one llama.cpp takes on most x86 and ARM machines
  mp.use_extra_bufts = false;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) die(std::string("cannot load ") + argv[1]);
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::int32_t n_vocab = llama_vocab_n_tokens(vocab);

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<std::uint32_t>(longest + n_new + 16);
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_seq_max = 1;
  cp.n_threads = 1;
  cp.n_threads_batch = 1;
  cp.no_perf = true;
  if (f32_kv) {
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
  }
  if (no_fa) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) die("cannot create a context");

  std::FILE* out = std::fopen(argv[4], "wb");
  if (!out) die(std::string("cannot write ") + argv[4]);
  std::fwrite("LLCR", 1, 4, out);
  put_i32(out, static_cast<std::int32_t>(prompts.size()));
  put_i32(out, n_vocab);
  put_i32(out, n_new);

  llama_batch batch = llama_batch_init(static_cast<std::int32_t>(cp.n_ctx), 0, 1);
  for (const auto& p : prompts) {
    llama_memory_clear(llama_get_memory(ctx), true);
    const auto n = static_cast<std::int32_t>(p.size());
    std::vector<float> rows;  // [n + n_new - 1][n_vocab]
    std::vector<llama_token> greedy;
    auto argmax = [&](const float* row) {
      return static_cast<llama_token>(std::max_element(row, row + n_vocab) - row);
    };

    batch.n_tokens = n;
    for (std::int32_t i = 0; i < n; ++i) {
      batch.token[i] = p[static_cast<std::size_t>(i)];
      batch.pos[i] = i;
      batch.n_seq_id[i] = 1;
      batch.seq_id[i][0] = 0;
      batch.logits[i] = true;
    }
    if (llama_decode(ctx, batch) != 0) die("llama_decode failed on a prompt");
    for (std::int32_t i = 0; i < n; ++i) {
      const float* row = llama_get_logits_ith(ctx, i);
      if (!row) die("no logits at a prompt position");
      rows.insert(rows.end(), row, row + n_vocab);
    }
    greedy.push_back(argmax(rows.data() + static_cast<std::size_t>(n - 1) * n_vocab));

    for (std::int32_t k = 1; k < n_new; ++k) {
      batch.n_tokens = 1;
      batch.token[0] = greedy.back();
      batch.pos[0] = n - 1 + k;
      batch.n_seq_id[0] = 1;
      batch.seq_id[0][0] = 0;
      batch.logits[0] = true;
      if (llama_decode(ctx, batch) != 0) die("llama_decode failed on a greedy step");
      const float* row = llama_get_logits_ith(ctx, 0);
      if (!row) die("no logits at a greedy step");
      rows.insert(rows.end(), row, row + n_vocab);
      greedy.push_back(argmax(row));
    }

    put_i32(out, n);
    std::fwrite(p.data(), sizeof(llama_token), p.size(), out);
    std::fwrite(greedy.data(), sizeof(llama_token), greedy.size(), out);
    std::fwrite(rows.data(), sizeof(float), rows.size(), out);
    std::fprintf(stderr, "prompt of %d tokens: greedy", n);
    for (const auto t : greedy) std::fprintf(stderr, " %d", t);
    std::fprintf(stderr, "\n");
  }
  llama_batch_free(batch);
  if (std::fclose(out) != 0) die("write failed");
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
