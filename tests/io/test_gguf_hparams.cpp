// io::gguf_hparams: the ARCH.* keys of llama.cpp's converters' GGUF files (tests/data/gguf_arch/,
// written by tools/make_gguf_arch_fixtures.py), and an io_error naming the file and the full key
// for a wrong architecture, a missing, mistyped or out-of-range key, and a vocabulary that
// contradicts token_embd.
#include <tformer/io/gguf.hpp>
#include <tformer/io/gguf_hparams.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;
namespace fs = std::filesystem;

namespace {
std::string gguf_arch(const std::string& name) { return (fs::path(TFORMER_TEST_DATA_DIR) / "gguf_arch" / (name + ".gguf")).string(); }
}  // namespace

TEST_CASE("gguf_hparams reads the architecture's keys of llama.cpp's converter output", "[io][gguf]") {
  const io::gguf_file f(gguf_arch("qwen2"));
  const io::gguf_hparams h(f, {"llama", "qwen2"});
  CHECK(h.arch() == "qwen2");
  CHECK(h.key("block_count") == "qwen2.block_count");
  CHECK(h.has("attention.head_count_kv"));
  CHECK_FALSE(h.has("rope.dimension_count"));
  CHECK(h.integer_at_least("block_count", 1) == 2);
  CHECK(h.integer_or("rope.dimension_count", 8) == 8);
  CHECK(h.number("rope.freq_base") == 10000.0);
  CHECK(static_cast<float>(h.positive("attention.layer_norm_rms_epsilon")) == 1e-6f);
  CHECK(h.vocab() == 97);
  CHECK(h.rows("blk.0.ffn_up.weight") == 48);

  const io::gguf_file b(gguf_arch("bert"));
  const io::gguf_hparams hb(b, {"bert"});
  CHECK(hb.boolean_or("attention.causal", true) == false);
  CHECK(hb.integer("pooling_type") == 1);  // mean, from the fixture's 1_Pooling/config.json
}

TEST_CASE("gguf_hparams names the file and the full key it cannot use", "[io][gguf][errors]") {
  const auto path = fs::temp_directory_path() / "tformer_test_gguf_hparams.gguf";
  const std::string p = path.string();
  auto error = [&](auto&& write, auto&& use) {
    io::gguf_writer w;
    write(w);
    w.write(path);
    const io::gguf_file f(path);
    return test::thrown_message<io_error>([&] { use(f); });
  };
  auto none = [](io::gguf_writer&) {};
  auto arch = [](const char* a) { return [a](io::gguf_writer& w) { w.add("general.architecture", std::string(a)); }; };

  CHECK(error(none, [](const io::gguf_file& f) { (void)io::gguf_hparams(f, {"gpt2"}); }) ==
        "tformer: gguf file '" + p + "' has no key 'general.architecture' (expected a STRING)");
  CHECK(error(arch("mpt"), [](const io::gguf_file& f) { (void)io::gguf_hparams(f, {"llama", "qwen2"}); }) ==
        "tformer: gguf file '" + p + "': general.architecture is 'mpt', not 'llama' or 'qwen2'");
  CHECK(error(arch("bert"), [](const io::gguf_file& f) { (void)io::gguf_hparams(f, {"bert"}).integer("block_count"); }) ==
        "tformer: gguf file '" + p + "' has no key 'bert.block_count' (expected an integer)");

  auto sizes = [](io::gguf_writer& w) {
    w.add("general.architecture", std::string("gpt2"));
    w.add("gpt2.block_count", std::uint32_t{0});
    w.add("gpt2.embedding_length", std::uint32_t{12});
    w.add("gpt2.attention.head_count", std::uint32_t{5});
    w.add("gpt2.attention.layer_norm_epsilon", 0.0f);
    w.add("gpt2.context_length", 1.5f);
    w.add("gpt2.vocab_size", std::uint32_t{7});
  };
  auto msg = [&](auto&& use) { return error(sizes, [&](const io::gguf_file& f) { use(io::gguf_hparams(f, {"gpt2"})); }); };
  CHECK(msg([](const io::gguf_hparams& h) { (void)h.integer_at_least("block_count", 1); }) ==
        "tformer: gguf file '" + p + "': key 'gpt2.block_count' is 0, expected at least 1");
  CHECK(msg([](const io::gguf_hparams& h) { (void)h.positive("attention.layer_norm_epsilon"); })
            .find("key 'gpt2.attention.layer_norm_epsilon' is 0.000000, expected > 0") != std::string::npos);
  CHECK(msg([](const io::gguf_hparams& h) { (void)h.integer("context_length"); })
            .find("key 'gpt2.context_length' (at byte ") != std::string::npos);  // a FLOAT32, not an integer
  CHECK(msg([](const io::gguf_hparams& h) { h.check_divides("embedding_length", 12, "attention.head_count", 5); }) ==
        "tformer: gguf file '" + p + "': key 'gpt2.attention.head_count' (5) does not divide key 'gpt2.embedding_length' (12)");
  CHECK(msg([](const io::gguf_hparams& h) { (void)h.vocab(); }) ==
        "tformer: gguf file '" + p + "': there is no tensor 'token_embd.weight'");

  tensor<float> table(shape{5, 4}, 0.5f);
  auto with_table = [&](io::gguf_writer& w) {
    sizes(w);
    w.add_tensor("token_embd.weight", table);
  };
  CHECK(error(with_table, [](const io::gguf_file& f) { (void)io::gguf_hparams(f, {"gpt2"}).vocab(); }) ==
        "tformer: gguf file '" + p + "': key 'gpt2.vocab_size' is 7 but token_embd.weight has 5 rows");
  fs::remove(path);
}
