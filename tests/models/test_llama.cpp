// The Llama preset from a GGUF file as llama.cpp's converter writes one: the sizes from llama.*
// metadata, llama.cpp's tensor names, the rows of attn_q / attn_k permuted for adjacent rotary
// pairs (run with interleaved rotary), weights in f32 or in Q8_0 loaded as their bytes. The
// logits equal the same model built from the unpermuted weights with rotate-half rotary. And
// llama.cpp's own conversion of the Qwen2 fixture (tests/data/gguf_arch/qwen2.gguf: qwen2.*
// keys, biases, rows unpermuted) against transformers.
// And the preset from Hugging Face directories (tests/data/hf_dirs/): Llama sharded with an
// index, Llama with a tied head (SmolLM2), Mistral with a sliding window, Qwen2 with q/k/v biases
// and a window on some layers, against transformers; both rope spellings; config errors.
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_source.hpp>
#include <tformer/io/name_maps.hpp>
#include <tformer/models/decoder.hpp>
#include <tformer/models/llama.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/quant/q8_0.hpp>

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <string>

#include "catch.hpp"
#include "fixture.hpp"
#include "gguf_models.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {
using hf_llama = models::decoder_lm<models::llama<>>;  // rotate-half rotary, untied head

models::model_config tiny() { return test::tiny_llama_config(); }

tensor<std::int32_t> prompt() {
  tensor<std::int32_t> ids(shape{2, 11});
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<std::int32_t>((i * 19 + 3) % 64);
  return ids;
}
}  // namespace

TEST_CASE("a llama GGUF loads with its sizes, names and permuted rotary rows", "[models][llama][gguf]") {
  hf_llama ref(tiny());
  nn::init_random(ref, 3);
  for (auto& l : ref.stack.layers)
    for (std::int64_t i = 0; i < 32; ++i) l.attn_residual.norm_in.weight(i) = 1.0f + 0.01f * static_cast<float>(i);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_llama.gguf";
  test::write_llama_gguf<quant::f32>(ref, path);

  const io::gguf_file f(path);
  const auto c = models::llama_config(f);
  CHECK(c.vocab == 64);
  CHECK(c.layers == 2);
  CHECK(c.layer.attention.kv_heads == 2);
  CHECK(c.layer.attention.head_dim == 8);
  CHECK(c.layer.rope.interleaved);
  CHECK(c.layer.rope.base == 500000.0f);
  CHECK_FALSE(models::gguf_tied_head(f));
  hf_llama from_gguf(c);
  CHECK(io::load_gguf(from_gguf, f, io::gguf_llama()) == static_cast<std::int64_t>(nn::parameter_names(from_gguf).size()));
  const auto want = ref.forward(prompt()), got = from_gguf.forward(prompt());
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(std::fabs(got.data()[i] - want.data()[i]) <= 1e-5f);
  std::filesystem::remove(path);
}

TEST_CASE("a Q8_0 llama GGUF loads as its bytes and equals the float model on those weights", "[models][llama][gguf]") {
  hf_llama ref(tiny());
  nn::init_random(ref, 4);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_llama_q8.gguf";
  test::write_llama_gguf<quant::q8_0>(ref, path);
  const io::gguf_file f(path);
  models::decoder_lm<models::llama<quant::q8_0>> q8(models::llama_config(f));
  io::load_gguf(q8, f, io::gguf_llama());
  CHECK(std::memcmp(q8.stack.layers[1].ffn.up.weight.data(), f.bytes(f.at("blk.1.ffn_up.weight")).data(),
                    q8.stack.layers[1].ffn.up.weight.size_bytes()) == 0);  // no float round trip
  hf_llama dequantized(models::llama_config(f));  // the same file into f32 parameters: dequantized
  io::load_gguf(dequantized, f, io::gguf_llama());
  const auto want = dequantized.forward(prompt()), got = q8.forward(prompt());
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(std::fabs(got.data()[i] - want.data()[i]) <= 1e-5f);
  std::filesystem::remove(path);
}

TEST_CASE("llama_config names the file and the key it cannot use", "[models][llama][gguf][errors]") {
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_not_llama.gguf";
  io::gguf_writer w;
  w.add("general.architecture", std::string("gpt2"));
  w.write(path);
  const auto msg = test::thrown_message<io_error>([&] { (void)models::llama_config(io::gguf_file(path)); });
  CHECK(msg.find("general.architecture is 'gpt2'") != std::string::npos);
  CHECK(msg.find(path.string()) != std::string::npos);
  io::gguf_writer w2;
  w2.add("general.architecture", std::string("llama"));
  w2.write(path);
  const auto missing = test::thrown_message<io_error>([&] { (void)models::llama_config(io::gguf_file(path)); });
  CHECK(missing.find("llama.block_count") != std::string::npos);
  io::gguf_writer w3;
  w3.add("general.architecture", std::string("qwen2"));
  w3.add("qwen2.block_count", std::uint32_t{2});
  w3.write(path);
  const auto qwen2 = test::thrown_message<io_error>([&] { (void)models::llama_config(io::gguf_file(path)); });
  CHECK(qwen2 == "tformer: gguf file '" + path.string() + "' has no key 'qwen2.embedding_length' (expected an integer)");
  const auto bert = test::thrown_message<io_error>([] {
    (void)models::llama_config(io::gguf_file(test::gguf_arch("bert.gguf")));
  });
  CHECK(bert.find("general.architecture is 'bert', not 'llama' or 'qwen2'") != std::string::npos);
  std::filesystem::remove(path);
}

namespace {
// Logits of the directory's model on its reference batch, and one token per step through the
// state against the full pass.
template <class Model>
void check_hf(const Model& lm, const std::string& name, const io::safetensors_file& ref) {
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto logits = lm.forward(ids, lengths);
  const auto want = ref.load<float>("logits");
  const double err = test::max_abs_diff(logits, want, lengths);
  INFO(name << " logits max abs error " << err);
  CHECK(err <= 1e-4);  // logits of order 1
  CHECK(test::same_argmax(logits, want, lengths));
  const std::int64_t B = ids.dim(0), S = ids.dim(1), V = lm.config.vocab;
  auto state = lm.make_state(B, S);
  for (std::int64_t s = 0; s < S; ++s) {
    tensor<std::int32_t> step(shape{B, 1}), n(shape{B});
    for (std::int64_t b = 0; b < B; ++b) {
      step(b, 0) = ids(b, s);
      n(b) = s < lengths(b) ? 1 : 0;
    }
    const auto out = lm.forward(step, n, &state);
    for (std::int64_t b = 0; b < B; ++b)
      if (s < lengths(b))
        for (std::int64_t v = 0; v < V; ++v) REQUIRE(std::fabs(out(b, 0, v) - logits(b, s, v)) <= 1e-5f);
  }
}
template <class Model>
void check_hf(const Model& lm, const std::string& name) {
  check_hf(lm, name, test::hf_reference(name));
}

models::model_config hf_config(const nlohmann::json& j) { return models::llama_config(io::json_fields(j, "l/config.json")); }
std::string hf_error(const nlohmann::json& j) {
  return test::thrown_message<io::config_error>([&] { (void)hf_config(j); });
}
}  // namespace

TEST_CASE("Llama from a sharded directory (index.json) matches transformers", "[models][parity][llama][hf]") {
  const io::hf_directory dir(test::hf_dir("llama_sharded"));
  CHECK_FALSE(models::hf_tied_head(dir));
  const auto c = models::llama_config(dir);
  CHECK(c.layer.rope.base == 500000.0f);
  CHECK_FALSE(c.layer.rope.interleaved);
  CHECK(c.layer.attention.kv_heads == 2);
  check_hf(models::load_llama(dir), "llama_sharded");
  CHECK_THROWS_AS((models::load_llama<quant::f32, quant::f32, true>(dir)), io::config_error);
}

TEST_CASE("Llama with a tied head (SmolLM2's shape) matches transformers", "[models][parity][llama][hf]") {
  const io::hf_directory dir(test::hf_dir("llama_tied"));
  CHECK(models::hf_tied_head(dir));
  CHECK(models::llama_config(dir).layer.attention.kv_heads == 1);
  check_hf(models::load_llama<quant::f32, quant::f32, true>(dir), "llama_tied");
  CHECK_THROWS_AS(models::load_llama(dir), io::config_error);
}

TEST_CASE("Mistral with a sliding window shorter than the batch matches transformers", "[models][parity][llama][hf]") {
  const io::hf_directory dir(test::hf_dir("mistral"));
  const auto c = models::llama_config(dir);
  CHECK(c.layer_at(0).attention.window == 4);
  CHECK(c.layer_at(1).attention.window == 4);
  check_hf(models::load_llama(dir), "mistral");
}

TEST_CASE("Qwen2 with q/k/v biases and a window from max_window_layers on matches transformers",
          "[models][parity][llama][hf]") {
  const io::hf_directory dir(test::hf_dir("qwen2"));
  const auto c = models::llama_config(dir);
  CHECK(c.layer.attention.qkv_bias);
  CHECK_FALSE(c.layer.attention.out_bias);
  CHECK(c.layer_at(0).attention.window == 0);
  CHECK(c.layer_at(1).attention.window == 3);
  check_hf(models::load_llama<quant::f32, quant::f32, true>(dir), "qwen2");
  nlohmann::json j = dir.config();  // transformers 4's spelling: no layer_types
  j.erase("layer_types");
  const auto c4 = hf_config(j);
  CHECK(c4.layer_at(0).attention.window == 0);
  CHECK(c4.layer_at(1).attention.window == 3);
  j["use_sliding_window"] = false;
  CHECK(hf_config(j).layer_at(1).attention.window == 0);
}

TEST_CASE("Qwen2 from llama.cpp's GGUF: q/k/v biases, rotate-half rotary, tied head; matches transformers",
          "[models][parity][llama][gguf]") {
  // convert_hf_to_gguf.py's output for hf_dirs/qwen2 (tools/make_gguf_arch_fixtures.py): llama.cpp
  // keeps Qwen2's q/k rows in Hugging Face's order (NEOX rotary) and writes no sliding window, so
  // the reference is transformers' Qwen2ForCausalLM on the same weights without the window.
  const io::gguf_file f(test::gguf_arch("qwen2.gguf"));
  const io::safetensors_file ref(test::gguf_arch("qwen2.reference.safetensors"));
  const auto c = models::llama_config(f);
  const auto hf = models::llama_config(io::hf_directory(test::hf_dir("qwen2")));
  test::check_same_sizes(c, hf);
  CHECK(c.layer.attention.qkv_bias);
  CHECK_FALSE(c.layer.attention.out_bias);
  CHECK(c.layer.rope.base == hf.layer.rope.base);
  CHECK_FALSE(c.layer.rope.interleaved);
  CHECK(c.layer_at(1).attention.window == 0);
  REQUIRE(models::gguf_tied_head(f));
  models::decoder_lm<models::llama<quant::f32, quant::f32, true>> lm(c);
  CHECK(io::load_gguf(lm, f, io::gguf_qwen2()) == static_cast<std::int64_t>(nn::parameter_names(lm).size()));
  check_hf(lm, "qwen2.gguf", ref);

  auto interleaved = c;  // the llama architecture's reading of the same rows is wrong here
  interleaved.layer.rope.interleaved = true;
  models::decoder_lm<models::llama<quant::f32, quant::f32, true>> wrong(interleaved);
  io::load_gguf(wrong, f, io::gguf_qwen2());
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const double right_err = test::max_abs_diff(lm.forward(ids, lengths), ref.load<float>("logits"), lengths);
  const double wrong_err = test::max_abs_diff(wrong.forward(ids, lengths), ref.load<float>("logits"), lengths);
  INFO("rotate-half " << right_err << ", interleaved " << wrong_err);
  CHECK(wrong_err > 1e-3);  // the tiny model's logits are small (|x| < 0.5); 10x the tolerance above
  CHECK(wrong_err > 1000 * right_err);
}

TEST_CASE("llama_config: rope in transformers 4 and 5 spellings, and errors naming the field", "[models][llama][hf][errors]") {
  const io::hf_directory dir(test::hf_dir("llama_sharded"));
  nlohmann::json v5 = dir.config(), v4 = dir.config();
  v4.erase("rope_parameters");
  v4["rope_theta"] = 500000.0;
  v4["rope_scaling"] = nullptr;
  CHECK(hf_config(v4).layer.rope.base == hf_config(v5).layer.rope.base);
  v4["rope_scaling"] = {{"type", "default"}};
  CHECK(hf_config(v4).layer.rope.base == 500000.0f);
  v4["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  CHECK(hf_config(v4).layer.rope.inv_freq.size() == 4);  // scaled: frequencies given
  v4["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  CHECK(hf_error(v4).find("field 'rope_scaling.type' is 'dynamic': supported rope types are default, linear, llama3 and yarn") !=
        std::string::npos);
  v4["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  CHECK(hf_error(v4).find("field 'rope_scaling.low_freq_factor' is missing") != std::string::npos);
  v4["rope_scaling"] = {{"rope_type", "linear"}, {"factor", -1.0}};
  CHECK(hf_error(v4).find("field 'rope_scaling.factor' is -1") != std::string::npos);
  v5["rope_parameters"]["rope_type"] = "longrope";
  CHECK(hf_error(v5).find("field 'rope_parameters.rope_type' is 'longrope'") != std::string::npos);
  v5 = dir.config();
  v5["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // contradicts rope_parameters' default
  CHECK(hf_error(v5).find("field 'rope_scaling.type' is 'linear' but rope_parameters.rope_type is 'default'") != std::string::npos);
  v5 = dir.config();
  v5["rope_theta"] = 10000.0;  // contradicts rope_parameters.rope_theta
  CHECK(hf_error(v5).find("field 'rope_theta' is 10000") != std::string::npos);
  v5 = dir.config();
  v5["rope_parameters"]["rope_theta"] = "big";
  CHECK(hf_error(v5).find("field 'rope_parameters.rope_theta' is a string, expected a number") != std::string::npos);
  v5 = dir.config();
  v5["partial_rotary_factor"] = 0.5;
  CHECK(hf_config(v5).layer.rope.dim == 4);

  auto fails = [&](const char* key, nlohmann::json v) {
    nlohmann::json k = dir.config();
    k[key] = v;
    return hf_error(k);
  };
  CHECK(fails("model_type", "gemma").find("field 'model_type' is 'gemma', not one of the Llama family's") != std::string::npos);
  CHECK(fails("num_key_value_heads", 3).find("field 'num_key_value_heads' is 3") != std::string::npos);
  CHECK(fails("hidden_act", "gelu").find("field 'hidden_act'") != std::string::npos);
  CHECK(fails("mlp_bias", true).find("field 'mlp_bias'") != std::string::npos);
  CHECK(fails("head_dim", 7).find("field 'head_dim' is 7") != std::string::npos);
  CHECK(fails("intermediate_size", "48").find("field 'intermediate_size' is a string, expected an integer") != std::string::npos);
  CHECK(fails("layer_types", nlohmann::json::array({"full_attention"})).find("field 'layer_types' has 1 entries") !=
        std::string::npos);
  CHECK(fails("layer_types", nlohmann::json::array({"full_attention", "chunked"})).find("field 'layer_types[1]' is 'chunked'") !=
        std::string::npos);
  CHECK(fails("layer_types", nlohmann::json::array({"full_attention", "sliding_attention"})).find("field 'sliding_window' is missing") !=
        std::string::npos);
  nlohmann::json mistral = dir.config();
  mistral["model_type"] = "mistral";
  mistral["sliding_window"] = nullptr;  // Mistral v0.2+: no window
  CHECK(hf_config(mistral).layer_at(1).attention.window == 0);
  mistral["sliding_window"] = 0;
  CHECK(hf_error(mistral).find("field 'sliding_window' is 0, expected at least 1") != std::string::npos);
}

TEST_CASE("Llama with scaled rotary (linear, llama3, yarn) matches transformers", "[models][parity][llama][hf][rope]") {
  const io::hf_directory dir(test::hf_dir("llama_rope"));
  const auto ref = test::hf_reference("llama_rope");
  const auto ids = ref.load<std::int32_t>("input_ids");  // [2, 40]: past the yarn variants' original 16 and 32
  std::ifstream in(std::filesystem::path(test::hf_dir("llama_rope")) / "rope_variants.json");
  const auto variants = nlohmann::json::parse(in);
  REQUIRE(variants.size() == 4);
  for (const auto& [name, params] : variants.items()) {
    nlohmann::json j = dir.config();
    j["rope_parameters"] = params;
    const auto c = hf_config(j);
    CHECK(c.layer.rope.inv_freq.size() == 4);
    models::decoder_lm<models::llama<quant::f32, quant::f32, true>> lm(c);
    io::load_checkpoint(lm, dir, io::hf_llama(/*tied=*/true));
    const auto logits = lm.forward(ids);
    const auto want = ref.load<float>("logits_" + name);
    const double err = test::max_abs_diff(logits, want);
    INFO(name << " logits max abs error " << err);
    CHECK(err <= 1e-4);
    CHECK(test::same_argmax(logits, want, {}));
  }
}

TEST_CASE("Llama GGUFs with scaled rotary (linear, Llama 3's rope_freqs) match transformers", "[models][parity][llama][gguf][rope]") {
  // llama.cpp's conversions of hf_dirs/llama_rope with the llama3 and linear variants
  // (tools/make_gguf_arch_fixtures.py): Llama 3's scaling becomes per-frequency divisors in
  // rope_freqs.weight, linear becomes llama.rope.scaling.type / factor; q/k rows permuted.
  const auto ref = test::hf_reference("llama_rope");
  const auto ids = ref.load<std::int32_t>("input_ids");
  for (const std::string variant : {"llama3", "linear"}) {
    const io::gguf_file f(test::gguf_arch("llama_rope_" + variant + ".gguf"));
    const auto c = models::llama_config(f);
    CHECK(c.layer.rope.interleaved);
    CHECK(c.layer.rope.inv_freq.size() == 4);
    models::decoder_lm<models::llama<quant::f32, quant::f32, true>> lm(c);
    io::load_gguf(lm, f, io::gguf_llama());
    const auto logits = lm.forward(ids);
    const auto want = ref.load<float>("logits_" + variant);
    const double err = test::max_abs_diff(logits, want);
    INFO(variant << " logits max abs error " << err);
    CHECK(err <= 1e-4);
    CHECK(test::same_argmax(logits, want, {}));
  }

  // YaRN is refused naming the key; a divisor table of the wrong size or sign names the tensor
  const auto path = std::filesystem::temp_directory_path() / "tformer_rope_scaling.gguf";
  const io::gguf_file src(test::gguf_arch("llama_rope_llama3.gguf"));
  auto rewrite = [&](const std::string& type, std::vector<float> divisors) {
    io::gguf_writer w;
    for (const auto& kv : src.metadata()) w.add(kv.key, kv.value);
    if (!type.empty()) w.add("llama.rope.scaling.type", type);
    std::deque<tensor<float>> keep;  // the writer reads them in write()
    for (const auto& t : src.tensors())
      if (t.name != "rope_freqs.weight") w.add_tensor(t.name, tensor_view<const float>(keep.emplace_back(src.load_float(t.name))));
    auto& d = keep.emplace_back(shape{static_cast<std::int64_t>(divisors.size())});
    std::copy(divisors.begin(), divisors.end(), d.data());
    w.add_tensor("rope_freqs.weight", tensor_view<const float>(d));
    w.write(path);
    return test::thrown_message<io_error>([&] { (void)models::llama_config(io::gguf_file(path)); });
  };
  CHECK(rewrite("yarn", {1, 1, 1, 1}).find("llama.rope.scaling.type' is 'yarn'") != std::string::npos);
  CHECK(rewrite("", {1, 2, 3}).find("tensor 'rope_freqs.weight' has 3 values for a rotary dim of 8") != std::string::npos);
  CHECK(rewrite("", {1, 0, 1, 1}).find("rope_freqs.weight' value 1 is 0") != std::string::npos);
  std::filesystem::remove(path);
}
