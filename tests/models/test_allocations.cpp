// A decode step allocates nothing once the first step has sized the state's workspace: the
// Llama-style and T5-style models of examples/ (and a GPT-2-style one with a tied head), at one
// and two threads. Every heap allocation of the process is counted while a step runs: malloc and
// its relatives routed through glibc's own functions plus a replaced global operator new (which
// also sees Eigen's and OpenMP's allocations), or, under AddressSanitizer, which owns malloc and
// operator new, its allocation hook.
#include <tformer/models/decoder.hpp>
#include <tformer/models/encoder_decoder.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/nn/t5_relative_bias.hpp>
#include <tformer/quant/q8_0.hpp>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>

#include "catch.hpp"
#include "support.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
inline void note() noexcept {
  if (counting.load(std::memory_order_relaxed)) {
    allocations.fetch_add(1, std::memory_order_relaxed);
#ifdef TFORMER_TEST_TRAP_ALLOCATIONS
    __builtin_trap();
#endif
  }
}
}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer calls this hook on every malloc and operator new.
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*, std::size_t),
                                                         void (*)(const volatile void*));
namespace {
[[maybe_unused]] const int hooks_installed = __sanitizer_install_malloc_and_free_hooks(
    [](const volatile void*, std::size_t) { note(); }, [](const volatile void*) {});
}  // namespace
#define TFORMER_TEST_COUNTS_MALLOC 1
#elif defined(__GLIBC__) && !defined(__SANITIZE_THREAD__)
#define TFORMER_TEST_COUNTS_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t s) {
  note();
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
void* memalign(std::size_t a, std::size_t n) {
  note();
  return __libc_memalign(a, n);
}
int posix_memalign(void** p, std::size_t a, std::size_t n) {
  note();
  *p = __libc_memalign(a, n);
  return *p ? 0 : ENOMEM;
}
void free(void* p) { __libc_free(p); }
}

// operator new in every form, through the counted malloc.
void* operator new(std::size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  void* p = nullptr;
  if (posix_memalign(&p, static_cast<std::size_t>(a), n ? n : 1) == 0) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#else
#define TFORMER_TEST_COUNTS_MALLOC 0
#endif

using namespace tformer;

namespace {

// Heap allocations made by f.
template <class F>
long allocations_in(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations.load();
}

// ---- the models of examples/decoder_lm.cpp and examples/encoder_decoder.cpp -----------------------
struct llama_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<nn::rotary>,
                                      nn::gated_mlp<simd::act::silu>>;
  using final_norm = nn::rms_norm;
};
struct llama_q8_spec : llama_spec {
  using weights = quant::q8_0;  // every linear and the table in Q8_0 (decode: dequantized rows, float products)
};
struct llama_q8_int8_spec : llama_spec {
  using weights = quant::int8_activations<quant::q8_0>;  // decode: the fused int8 product
};
struct gpt2_spec {
  using layer = nn::transformer_layer<nn::pre_ln, nn::layer_norm, nn::multi_head_attention<>, nn::mlp<simd::act::gelu_tanh>>;
  using positions = nn::learned_positions;
  using final_norm = nn::layer_norm;
  static constexpr bool tie_embeddings = true;
};
struct t5_spec {
  using encoder_layer = nn::transformer_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using decoder_layer = nn::cross_decoder_layer<nn::pre_ln, nn::rms_norm, nn::multi_head_attention<>, nn::gated_mlp<simd::act::gelu_tanh>>;
  using attention_bias = nn::t5_relative_bias;
  using final_norm = nn::rms_norm;
};

models::model_config llama_config() {
  models::model_config c;
  c.vocab = 1000, c.layers = 4;
  c.layer.attention = {.d_model = 256, .heads = 8, .kv_heads = 2, .qkv_bias = false, .out_bias = false};
  c.layer.ffn = {.d_model = 256, .d_ff = 688, .bias = false};
  c.layer.norm_eps = 1e-6f;
  return c;
}
models::model_config gpt2_config() {
  models::model_config c;
  c.vocab = 1000, c.layers = 4, c.max_positions = 256;
  c.layer.attention = {.d_model = 256, .heads = 8};
  c.layer.ffn = {.d_model = 256, .d_ff = 1024};
  return c;
}
models::model_config t5_config() {
  models::model_config c;
  c.vocab = 500, c.layers = 3;
  c.layer.attention = {.d_model = 128, .heads = 4, .qkv_bias = false, .out_bias = false, .scale = 1.0f};
  c.layer.ffn = {.d_model = 128, .d_ff = 320, .bias = false};
  c.layer.norm_eps = 1e-6f;
  return c;
}

// Greedy steps of a decoder-only model after a prompt; returns the allocations of steps 2..n.
template <class Model>
long decoder_steps(const Model& m, std::int64_t batch) {
  auto state = m.make_state(batch, 64);
  tensor<std::int32_t> prompt(shape{batch, 5});
  for (std::int64_t i = 0; i < prompt.numel(); ++i) prompt.data()[i] = static_cast<std::int32_t>(1 + i * 37 % 900);
  (void)m.forward(prompt, {}, &state);
  tensor<std::int32_t> next(shape{batch, 1}, 42);
  tensor<float> logits(shape{batch, 1, m.config.vocab});
  m.forward(next, {}, state, logits);  // the first step sizes the workspace
  return allocations_in([&] {
    for (int step = 0; step < 8; ++step) {
      m.forward(next, {}, state, logits);
      next(0, 0) = static_cast<std::int32_t>(step * 7 + 3);
    }
  });
}

}  // namespace

TEST_CASE("the allocation counter sees allocations", "[models][allocations]") {
  REQUIRE(TFORMER_TEST_COUNTS_MALLOC);  // a platform without a counter would pass vacuously
  CHECK(allocations_in([] { delete new int(3); }) == 1);
  CHECK(allocations_in([] { std::free(std::malloc(10)); }) == 1);
}

TEST_CASE("a decode step of the Llama-style (f32 and Q8_0) and GPT-2-style models allocates nothing after the first",
          "[models][allocations]") {
  test::thread_guard guard;
  models::decoder_lm<llama_spec> llama(llama_config());
  models::decoder_lm<gpt2_spec> gpt2(gpt2_config());
  auto q8_config = llama_config();
  q8_config.layer.ffn.d_ff = 704;  // Q8_0 rows hold whole blocks of 32
  models::decoder_lm<llama_q8_spec> llama_q8(q8_config);
  models::decoder_lm<llama_q8_int8_spec> llama_q8_int8(q8_config);
  nn::init_random(llama, 7);
  nn::init_random(gpt2, 7);
  nn::init_random(llama_q8, 7);
  nn::init_random(llama_q8_int8, 7);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    INFO("threads " << threads);
    CHECK(decoder_steps(llama, 1) == 0);
    CHECK(decoder_steps(gpt2, 1) == 0);
    CHECK(decoder_steps(llama_q8, 1) == 0);
    CHECK(decoder_steps(llama_q8_int8, 1) == 0);
  }
}

TEST_CASE("a decode step of the T5-style model allocates nothing after the first", "[models][allocations]") {
  test::thread_guard guard;
  models::encoder_decoder<t5_spec> t5(t5_config());
  nn::init_random(t5, 11);
  tensor<std::int32_t> src(shape{2, 5}), src_len(shape{2});
  for (std::int64_t i = 0; i < 10; ++i) src.data()[i] = static_cast<std::int32_t>(3 + (i * 37) % 400);
  src_len(0) = 5, src_len(1) = 3;
  const models::encoded source = t5.encode(src, src_len);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    INFO("threads " << threads);
    auto state = t5.make_state(2, 16);
    tensor<std::int32_t> next(shape{2, 1}, 0);
    tensor<float> logits(shape{2, 1, 500});
    t5.decode(next, source, {}, state, logits);
    const long n = allocations_in([&] {
      for (int step = 0; step < 6; ++step) {
        t5.decode(next, source, {}, state, logits);
        next(0, 0) = static_cast<std::int32_t>(step + 5);
      }
    });
    CHECK(n == 0);
  }
}
