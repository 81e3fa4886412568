// Runtime dispatch on model_type (models/hf_auto.hpp): every fixture directory opens as its kind
// and computes what its typed preset computes; generate::run takes the opened decoder and
// encoder-decoder through std::visit; unknown and mismatched model types name config.json and
// model_type and list the supported types.
#include <tformer/generate/search.hpp>
#include <tformer/io/checkpoint.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/hf_auto.hpp>
#include <tformer/quant/bf16.hpp>
#include <tformer/quant/q8_0.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;
namespace fs = std::filesystem;

TEST_CASE("open_decoder: GPT-2, Llama (tied or not), Mistral, Qwen2 by model_type", "[models][hf_auto]") {
  for (const std::string name : {"gpt2", "llama_sharded", "llama_tied", "mistral", "qwen2"}) {
    const io::hf_directory dir(test::hf_dir(name));
    CHECK(models::hf_kind_of(dir) == models::hf_kind::decoder);
    const auto lm = models::open_decoder(dir);
    const auto ref = test::hf_reference(name);
    const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
    const auto logits = std::visit([&](const auto& m) { return m.forward(ids, lengths); }, lm);
    const double err = test::max_abs_diff(logits, ref.load<float>("logits"), lengths);
    INFO(name << " logits max abs error " << err);
    CHECK(err <= 1e-4);
  }
  CHECK(std::holds_alternative<models::decoder_lm<models::gpt2<>>>(models::open_decoder(fs::path(test::hf_dir("gpt2")))));
}

TEST_CASE("generate::run on an opened decoder and an opened encoder-decoder", "[models][hf_auto][generate]") {
  generate::options o;
  o.max_new_tokens = 5;
  const std::vector<std::vector<std::int32_t>> inputs = {{5, 17, 33}, {60, 2, 9, 11}};
  const io::hf_directory gdir(test::hf_dir("gpt2"));
  const auto lm = models::open_decoder(gdir);
  const auto got = std::visit([&](const auto& m) { return generate::run(m, inputs, o); }, lm);
  const auto want = generate::run(models::load_gpt2(gdir), inputs, o);  // the typed preset
  REQUIRE(got.size() == 2);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i][0].tokens == want[i][0].tokens);

  const io::hf_directory tdir(test::hf_dir("t5_v1_0"));
  CHECK(models::hf_kind_of(tdir) == models::hf_kind::seq2seq);
  const auto s2s = models::open_seq2seq(tdir);
  CHECK(std::holds_alternative<models::encoder_decoder<models::t5<false, true>>>(s2s));
  const auto t5_got = std::visit([&](const auto& m) { return generate::run(m, inputs, o); }, s2s);
  const auto t5_want = generate::run(models::load_t5<models::t5<false, true>>(tdir), inputs, o);
  for (std::size_t i = 0; i < t5_got.size(); ++i) CHECK(t5_got[i][0].tokens == t5_want[i][0].tokens);
  CHECK(std::holds_alternative<models::encoder_decoder<models::t5<true, true>>>(
      models::open_seq2seq(io::hf_directory(test::hf_dir("t5_v1_1")))));
}

TEST_CASE("open_encoder: BERT", "[models][hf_auto]") {
  const io::hf_directory dir(test::hf_dir("bert_st"));
  CHECK(models::hf_kind_of(dir) == models::hf_kind::encoder);
  const auto enc = models::open_encoder(dir);
  const auto ref = test::hf_reference("bert_st");
  const auto lengths = ref.load<std::int32_t>("lengths");
  const auto hidden = std::visit([&](const auto& m) { return m.forward(ref.load<std::int32_t>("input_ids"), lengths); }, enc);
  CHECK(test::max_abs_diff(hidden, ref.load<float>("last_hidden_state"), lengths) <= 1e-4);
}

TEST_CASE("unknown and mismatched model types name config.json and model_type", "[models][hf_auto][errors]") {
  const fs::path d = fs::temp_directory_path() / "tformer_test_hf_auto";
  fs::remove_all(d);
  fs::copy(test::hf_dir("gpt2"), d, fs::copy_options::recursive);
  {
    std::ofstream(d / "config.json", std::ios::trunc) << R"({"model_type": "mamba", "vocab_size": 5})";
    const io::hf_directory dir(d);
    const auto msg = test::thrown_message<io::config_error>([&] { (void)models::open_decoder(dir); });
    CHECK(msg.find((d / "config.json").string()) != std::string::npos);
    CHECK(msg.find("field 'model_type' is 'mamba', which tformer cannot load; supported: encoders: bert; decoders: gpt2, "
                   "llama, mistral, qwen2; encoder-decoders: t5") != std::string::npos);
    CHECK_THROWS_AS(models::hf_kind_of(dir), io::config_error);
  }
  {
    std::ofstream(d / "config.json", std::ios::trunc) << R"({"vocab_size": 5})";
    const io::hf_directory dir(d);
    CHECK(test::thrown_message<io::config_error>([&] { (void)models::hf_kind_of(dir); }).find("field 'model_type' is missing") !=
          std::string::npos);
  }
  const io::hf_directory gpt2(test::hf_dir("gpt2"));
  CHECK(test::thrown_message<io::config_error>([&] { (void)models::open_encoder(gpt2); })
            .find("field 'model_type' is 'gpt2', not an encoder (use open_decoder)") != std::string::npos);
  CHECK(test::thrown_message<io::config_error>([&] { (void)models::open_seq2seq(gpt2); }).find("not an encoder-decoder") !=
        std::string::npos);
  const io::hf_directory bert(test::hf_dir("bert_st"));
  CHECK(test::thrown_message<io::config_error>([&] { (void)models::open_decoder(bert); }).find("use open_encoder") !=
        std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("open_* in another weight format: bf16 linears and tables, converted on load", "[models][hf_auto][formats]") {
  // bf16 keeps 8 bits of mantissa: the tiny model's logits move by about 1e-3
  const auto ref = test::hf_reference("llama_tied");
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const auto lm = models::open_decoder<quant::bf16>(fs::path(test::hf_dir("llama_tied")));
  CHECK(std::holds_alternative<models::decoder_lm<models::llama<quant::bf16, quant::bf16, true>>>(lm));
  const auto logits = std::visit([&](const auto& m) { return m.forward(ids, lengths); }, lm);
  const double err = test::max_abs_diff(logits, ref.load<float>("logits"), lengths);
  INFO("llama_tied in bf16: logits max abs error " << err);
  CHECK(err > 1e-6);  // really converted
  CHECK(err <= 1e-2);

  const auto s2s = models::open_seq2seq<quant::bf16>(fs::path(test::hf_dir("bart")));
  CHECK(std::holds_alternative<models::encoder_decoder<models::bart<simd::act::gelu, false, quant::bf16, quant::bf16>>>(s2s));
  const auto enc = models::open_encoder<quant::bf16>(fs::path(test::hf_dir("bert_st")));
  CHECK(std::holds_alternative<models::encoder<models::bert<quant::bf16, quant::bf16>>>(enc));
}

TEST_CASE("a quantized model saved under the directory's names loads back as it is", "[models][hf_auto][formats]") {
  // what tformer-quantize writes for a directory: config.json, and model.safetensors with the
  // linears packed (here q8_0), under the Hugging Face names
  const auto ref = test::hf_reference("llama_blocks");
  const auto ids = ref.load<std::int32_t>("input_ids"), lengths = ref.load<std::int32_t>("lengths");
  const io::hf_directory src(test::hf_dir("llama_blocks"));
  auto q = models::load_llama<quant::q8_0, quant::f32, true>(src);  // quantized on load
  const fs::path d = fs::temp_directory_path() / "tformer_test_q8_0_dir";
  fs::remove_all(d);
  fs::create_directories(d);
  fs::copy_file(src.root() / "config.json", d / "config.json");
  io::save_safetensors(q, d / "model.safetensors", io::hf_llama(true));

  auto again = models::load_llama<quant::q8_0, quant::f32, true>(io::hf_directory(d));  // the bytes as they are
  const auto logits = q.forward(ids, lengths), logits_again = again.forward(ids, lengths);
  CHECK(test::max_abs_diff(logits, logits_again, lengths) == 0.0);
  const double err = test::max_abs_diff(logits, ref.load<float>("logits"), lengths);
  INFO("llama_blocks in q8_0: logits max abs error " << err);
  CHECK(err > 1e-7);  // really quantized
  CHECK(err <= 5e-2);

  const auto lm = models::open_decoder(io::hf_directory(d));  // a float model: dequantized on load
  const auto dequantized = std::visit([&](const auto& m) { return m.forward(ids, lengths); }, lm);
  CHECK(test::max_abs_diff(dequantized, logits, lengths) <= 1e-5);
  fs::remove_all(d);
}
