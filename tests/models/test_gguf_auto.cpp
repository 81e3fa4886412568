// models::open_gguf_decoder (models/gguf_auto.hpp): the instantiation it picks for llama.cpp's
// conversions (tests/data/gguf_arch) and for tiny Llamas written with Q8_0 and Q4_1 layers, whose
// weights it keeps in their format (logits equal the float model's on the dequantized weights
// within 1e-4); errors naming the file and architecture.
#include <tformer/io/gguf.hpp>
#include <tformer/models/gguf_auto.hpp>
#include <tformer/quant/q4_1.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/quant/q8_0.hpp>

#include <deque>
#include <filesystem>
#include <string>
#include <variant>

#include "catch.hpp"
#include "fixture.hpp"
#include "gguf_models.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
using tied_f32 = models::decoder_lm<models::llama<quant::f32, quant::f32, true>>;
using untied_f32 = models::decoder_lm<models::llama<quant::f32, quant::f32, false>>;

// A tiny random Llama.
template <class M>
M tiny() {
  M m(test::tiny_llama_config());
  nn::init_random(m, 5);
  return m;
}

// open_gguf_decoder on the file picks the model of index `want`, whose logits equal the float
// model's on the file's dequantized weights.
template <class Float>
void check_picked(const std::filesystem::path& path, std::size_t want) {
  const io::gguf_file f(path.string());
  const auto m = models::open_gguf_decoder(f);
  CHECK(m.index() == want);
  Float ref(models::llama_config(f));
  io::load_gguf(ref, f, io::gguf_llama());
  tensor<std::int32_t> ids(shape{2, 7});
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<std::int32_t>((i * 13 + 5) % 64);
  const auto want_logits = ref.forward(ids);
  std::visit([&](const auto& lm) { CHECK(test::max_abs_diff(lm.forward(ids), want_logits) <= 1e-4); }, m);
}

template <class Layer, class Table, class M>
void check_written(const M& model, const std::string& name, std::size_t want) {
  const auto path = std::filesystem::temp_directory_path() / ("tformer_test_gguf_auto_" + name + ".gguf");
  test::write_llama_gguf<Layer, Table>(model, path);
  check_picked<M>(path, want);
  std::filesystem::remove(path);
}
}  // namespace

TEST_CASE("open_gguf_decoder picks the architecture's preset and the file's formats", "[models][gguf][gguf_auto]") {
  CHECK(models::open_gguf_decoder(io::gguf_file(test::gguf_arch("gpt2.gguf"))).index() == 5);
  CHECK(models::open_gguf_decoder(io::gguf_file(test::gguf_arch("gpt2_q8_0.gguf"))).index() == 5);  // dequantized
  CHECK(models::open_gguf_decoder(io::gguf_file(test::gguf_arch("qwen2.gguf"))).index() == 1);       // f32, tied
  check_picked<tied_f32>(test::gguf_arch("llama_rope_llama3.gguf"), 1);

  const auto tied = tiny<tied_f32>();
  const auto untied = tiny<untied_f32>();
  check_written<quant::q8_0, quant::q8_0>(tied, "q8_0_tied", 3);
  check_written<quant::q8_0, quant::q8_0>(untied, "q8_0", 2);
  check_written<quant::q4_1, quant::q8_0>(tied, "q4_1", 4);
  check_written<quant::q4_1, quant::q4_1>(tied, "q4_1_table", 1);  // no such instantiation: float
  check_written<quant::f32, quant::f32>(untied, "f32", 0);

  const auto bert = test::gguf_arch("bert.gguf");
  const auto msg = test::thrown_message<io_error>([&] { (void)models::open_gguf_decoder(io::gguf_file(bert)); });
  CHECK(msg == "tformer: gguf file '" + bert + "': general.architecture is 'bert', which open_gguf_decoder cannot run; "
               "supported: llama, qwen2, gpt2");
}
