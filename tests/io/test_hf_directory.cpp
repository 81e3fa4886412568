// io::hf_directory on the directories save_pretrained wrote (tests/data/hf_dirs/): config.json,
// model.safetensors or shards with model.safetensors.index.json, one checkpoint source over all of
// them; and one case per rule: malformed or truncated JSON (file and byte offset named), fields
// missing or of the wrong type (file and field named), an index naming a missing shard, a tensor
// its shard lacks, a tensor in two shards, a shard tensor the index does not list.
#include <tformer/io/hf_directory.hpp>
#include <tformer/io/safetensors.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "catch.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;
namespace fs = std::filesystem;

namespace {

// A scratch copy of a fixture directory, removed at the end of the test.
struct scratch_dir {
  explicit scratch_dir(const std::string& name) : path(fs::temp_directory_path() / ("tformer_test_hf_" + name)) {
    fs::remove_all(path);
    fs::copy(test::hf_dir(name), path, fs::copy_options::recursive);
  }
  ~scratch_dir() { fs::remove_all(path); }
  void write(const std::string& file, const std::string& text) const {
    std::ofstream(path / file, std::ios::binary | std::ios::trunc) << text;
  }
  std::string read(const std::string& file) const {
    std::ifstream in(path / file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  fs::path path;
};

// A "model" of two parameters, for writing a shard with save_safetensors.
struct two_tensors {
  tensor<float> head, norm;
  template <class V>
  void visit(V&& v, const std::string&) {
    v("lm_head.weight", head);
    v("model.norm.weight", norm);
  }
};

std::string open_error(const fs::path& p) {
  return test::thrown_message<io::config_error>([&] { io::hf_directory d(p); });
}

}  // namespace

TEST_CASE("a single-file directory: config, tokenizer path, tensors", "[io][hf_directory]") {
  const io::hf_directory d(test::hf_dir("gpt2"));
  CHECK(d.model_type() == "gpt2");
  CHECK(d.fields().integer("n_embd") == 32);
  CHECK_FALSE(d.tokenizer_path().has_value());
  REQUIRE(d.shards().size() == 1);
  CHECK(d.path().ends_with("model.safetensors"));
  CHECK(d.has_tensor("transformer.wte.weight"));
  CHECK(d.has_prefix("transformer."));
  CHECK_FALSE(d.has_prefix("bert."));
  const auto t = d.find_tensor("transformer.wte.weight");
  REQUIRE(t.has_value());
  CHECK(t->shape == std::vector<std::int64_t>{97, 32});
  CHECK(t->format == "f32");
  CHECK(d.read_float("transformer.wte.weight").shape() == shape{97, 32});
  CHECK_FALSE(d.find_tensor("nope").has_value());
  CHECK_THROWS_AS(d.read_float("nope"), io_error);
}

TEST_CASE("a sharded directory is one source over every shard", "[io][hf_directory]") {
  const io::hf_directory d(test::hf_dir("llama_sharded"));
  CHECK(d.shards().size() == 3);
  CHECK(d.path().ends_with("model.safetensors.index.json"));
  std::size_t total = 0;
  for (const auto& s : d.shards()) total += s.entries().size();
  CHECK(d.tensor_names().size() == total);
  for (const auto& name : d.tensor_names()) CHECK(d.find_tensor(name).has_value());
  CHECK(d.find_tensor("lm_head.weight")->shape == std::vector<std::int64_t>{97, 32});
}

TEST_CASE("a directory with tokenizer.json names it", "[io][hf_directory]") {
  scratch_dir s("gpt2");
  s.write("tokenizer.json", "{}");
  const io::hf_directory d(s.path);
  REQUIRE(d.tokenizer_path().has_value());
  CHECK(d.tokenizer_path()->filename() == "tokenizer.json");
}

TEST_CASE("malformed and truncated config.json: file and byte offset", "[io][hf_directory][errors]") {
  scratch_dir s("gpt2");
  const std::string text = s.read("config.json");
  s.write("config.json", text.substr(0, 100));  // truncated
  auto msg = open_error(s.path);
  CHECK(msg.find("config.json") != std::string::npos);
  CHECK(msg.find("not valid JSON at byte 10") != std::string::npos);  // byte 100 or 101 (end of input)
  s.write("config.json", "{\"model_type\": \"gpt2\",, }");
  msg = open_error(s.path);
  CHECK(msg.find("at byte 23") != std::string::npos);
  s.write("config.json", "{\"vocab_size\": 1e999}");  // a number no double holds
  msg = open_error(s.path);
  CHECK(msg.find("not valid JSON at byte 20 (number overflow parsing '1e999')") != std::string::npos);
  s.write("config.json", "[1, 2]");
  CHECK(open_error(s.path).find("is an array, expected an object") != std::string::npos);
  s.write("config.json", "");
  CHECK(open_error(s.path).find("not valid JSON at byte") != std::string::npos);
  fs::remove(s.path / "config.json");
  CHECK_THROWS_AS(io::hf_directory(s.path), io_error);
  CHECK_THROWS_AS(io::hf_directory(s.path / "model.safetensors"), io_error);  // not a directory
}

TEST_CASE("json_fields names the file and the field", "[io][hf_directory][errors]") {
  const auto j = nlohmann::json::parse(R"({"a": 1, "s": "x", "f": 1.5, "n": null, "big": 18446744073709551615,
                                           "neg": -3, "o": {"r": "t"}, "l": ["p", 3]})");
  const io::json_fields f(j, "dir/config.json");
  auto fails = [&](auto fn) { return test::thrown_message<io::config_error>(fn); };
  CHECK(fails([&] { (void)f.integer("missing"); }) == "tformer: dir/config.json: field 'missing' is missing");
  CHECK(fails([&] { (void)f.integer("s"); }) == "tformer: dir/config.json: field 's' is a string, expected an integer");
  CHECK(fails([&] { (void)f.integer("f"); }).find("'f' is a number with a fraction, expected an integer") != std::string::npos);
  CHECK(fails([&] { (void)f.integer("n"); }).find("'n' is missing") != std::string::npos);  // null counts as missing
  CHECK(fails([&] { (void)f.integer("big"); }).find("'big' is too large") != std::string::npos);
  CHECK(fails([&] { (void)f.integer_at_least("neg", 1); }).find("'neg' is -3, expected at least 1") != std::string::npos);
  CHECK(fails([&] { (void)f.string("a"); }).find("'a' is an integer, expected a string") != std::string::npos);
  CHECK(fails([&] { (void)f.boolean("a"); }).find("expected true or false") != std::string::npos);
  CHECK(fails([&] { (void)f.object_or_none("s"); }).find("expected an object") != std::string::npos);
  CHECK(fails([&] { (void)f.object_or_none("o")->integer("r"); }).find("field 'o.r' is a string") != std::string::npos);
  CHECK(fails([&] { (void)f.strings_or_none("l"); }).find("field 'l[1]' is an integer, expected a string") != std::string::npos);
  CHECK(f.integer_or("n", 7) == 7);
  CHECK(f.number("f") == 1.5);
  CHECK(f.number("a") == 1.0);
  try {
    (void)f.string("a");
  } catch (const io::config_error& e) {
    CHECK(e.file() == "dir/config.json");
    CHECK(e.field() == "a");
  }
}

TEST_CASE("index.json: malformed, missing shard, tensor not in its shard, in two shards, unlisted",
          "[io][hf_directory][errors]") {
  scratch_dir s("llama_sharded");
  const std::string index = s.read("model.safetensors.index.json");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = index;
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    s.write("model.safetensors.index.json", t);
  };
  s.write("model.safetensors.index.json", index.substr(0, 150));
  auto msg = open_error(s.path);
  CHECK(msg.find("model.safetensors.index.json") != std::string::npos);
  CHECK(msg.find("not valid JSON at byte 15") != std::string::npos);  // 150 or 151

  s.write("model.safetensors.index.json", R"({"weight_map": []})");
  CHECK(open_error(s.path).find("field 'weight_map' is an array, expected an object") != std::string::npos);
  s.write("model.safetensors.index.json", R"({"metadata": {}})");
  CHECK(open_error(s.path).find("field 'weight_map' is missing") != std::string::npos);
  s.write("model.safetensors.index.json", R"({"weight_map": {"lm_head.weight": 3}})");
  CHECK(open_error(s.path).find("field 'weight_map.lm_head.weight' is an integer") != std::string::npos);
  s.write("model.safetensors.index.json", R"({"weight_map": {"lm_head.weight": "../model-00003-of-00003.safetensors"}})");
  CHECK(open_error(s.path).find("not a file name inside the model directory") != std::string::npos);

  // a shard that does not exist
  with("\"lm_head.weight\": \"model-00003-of-00003.safetensors\"", "\"lm_head.weight\": \"model-00009-of-00009.safetensors\"");
  msg = open_error(s.path);
  CHECK(msg.find("field 'weight_map.lm_head.weight' names shard 'model-00009-of-00009.safetensors', which does not exist") !=
        std::string::npos);
  // a tensor its shard lacks (lm_head is in shard 3)
  with("\"lm_head.weight\": \"model-00003-of-00003.safetensors\"", "\"lm_head.weight\": \"model-00001-of-00003.safetensors\"");
  CHECK(open_error(s.path).find("which has no tensor 'lm_head.weight'") != std::string::npos);
  // a tensor the index does not list
  with("\"model.layers.0.input_layernorm.weight\": \"model-00002-of-00003.safetensors\",", "");
  CHECK(open_error(s.path).find("field 'weight_map' does not list tensor 'model.layers.0.input_layernorm.weight' of shard "
                                "'model-00002-of-00003.safetensors'") != std::string::npos);
  // a tensor in two shards: shard 3 rewritten to hold model.norm.weight too
  s.write("model.safetensors.index.json", index);
  {
    const io::safetensors_file three(s.path / "model-00003-of-00003.safetensors");
    const io::safetensors_file two(s.path / "model-00002-of-00003.safetensors");
    two_tensors m{three.load<float>("lm_head.weight"), two.load<float>("model.norm.weight")};
    io::save_safetensors(m, s.path / "two.safetensors");
  }
  fs::rename(s.path / "two.safetensors", s.path / "model-00003-of-00003.safetensors");
  msg = open_error(s.path);
  CHECK(msg.find("field 'weight_map.model.norm.weight' names shard 'model-00002-of-00003.safetensors', but shard "
                 "'model-00003-of-00003.safetensors' holds the tensor too") != std::string::npos);
}

TEST_CASE("a directory without safetensors weights", "[io][hf_directory][errors]") {
  scratch_dir s("gpt2");
  fs::remove(s.path / "model.safetensors");
  auto msg = test::thrown_message<io_error>([&] { io::hf_directory d(s.path); });
  CHECK(msg.find("has neither model.safetensors nor model.safetensors.index.json") != std::string::npos);
  s.write("pytorch_model.bin", "x");
  msg = test::thrown_message<io_error>([&] { io::hf_directory d(s.path); });
  CHECK(msg.find("PyTorch pickles") != std::string::npos);
}

TEST_CASE("parse_safetensors_index reads a weight map from text", "[io][hf_directory]") {
  const auto m = io::parse_safetensors_index(R"({"metadata": {"total_size": 8}, "weight_map": {"a": "x.safetensors",
                                                  "b": "y.safetensors"}})", "index.json");
  CHECK(m.size() == 2);
  CHECK(m.at("b") == "y.safetensors");
  CHECK_THROWS_AS(io::parse_safetensors_index(R"({"weight_map": {}})", "index.json"), io::config_error);
  CHECK_THROWS_AS(io::parse_safetensors_index("{\"weight_map\": {\"a\": \"\"}}", "index.json"), io::config_error);
}
