// Name maps (patterns, transposes, fused-tensor chunks), loading reports, and save/load round trips.
#include <tformer/io/checkpoint.hpp>
#include <tformer/nn/attention.hpp>
#include <tformer/nn/parameters.hpp>
#include <tformer/quant/q8_0.hpp>

#include <cstring>
#include <filesystem>

#include "catch.hpp"
#include "support.hpp"

using namespace tformer;

TEST_CASE("name_map resolves layer numbers and wildcards", "[io][checkpoint]") {
  io::name_map m;
  m.add("layers.{i}.attn.q.weight", "h.{i}.c_attn.weight", true, 0, 3).ignore("h.{i}.attn.bias").ignore("pooler.*");
  const auto s = m.resolve("layers.12.attn.q.weight");
  REQUIRE(s);
  CHECK(s->name == "h.12.c_attn.weight");
  CHECK(s->transpose);
  CHECK(s->chunks == 3);
  CHECK_FALSE(m.resolve("layers.x.attn.q.weight"));
  CHECK_FALSE(m.resolve("layers.1.attn.q.weights"));
  CHECK(m.ignored("h.3.attn.bias"));
  CHECK(m.ignored("pooler.dense.weight"));
  CHECK_FALSE(m.ignored("h.3.attn.c_attn.bias"));
  CHECK_THROWS_AS(m.add("a", "b", false, 3, 3), value_error);
}

TEST_CASE("save then load under tformer's names restores every parameter", "[io][checkpoint]") {
  nn::multi_head_attention<> a(nn::attention_config{.d_model = 8, .heads = 2, .kv_heads = 1});
  nn::init_random(a, 9);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_roundtrip.safetensors";
  io::save_safetensors(a, path);
  nn::multi_head_attention<> b(nn::attention_config{.d_model = 8, .heads = 2, .kv_heads = 1});
  CHECK(io::load_safetensors(b, io::safetensors_file(path), io::identity_map(b)) == 8);  // q, k, v, o weights and biases
  CHECK(std::memcmp(a.k.weight.data(), b.k.weight.data(), static_cast<std::size_t>(a.k.weight.numel()) * 4) == 0);
  CHECK(std::memcmp(a.o.bias.data(), b.o.bias.data(), static_cast<std::size_t>(a.o.bias.numel()) * 4) == 0);

  // bf16 storage: saved as BF16, loaded bit-exactly
  nn::multi_head_attention<nn::no_rope, nn::bf16_weights> c(nn::attention_config{.d_model = 8, .heads = 2});
  nn::init_random(c, 10);
  io::save_safetensors(c, path);
  nn::multi_head_attention<nn::no_rope, nn::bf16_weights> d(nn::attention_config{.d_model = 8, .heads = 2});
  io::load_safetensors(d, io::safetensors_file(path), io::identity_map(d));
  CHECK(std::memcmp(c.v.weight.data(), d.v.weight.data(), static_cast<std::size_t>(c.v.weight.numel()) * 2) == 0);
}

TEST_CASE("save under a name map writes the checkpoint's names, which load back through the same map",
          "[io][checkpoint]") {
  nn::multi_head_attention<nn::no_rope, quant::q8_0> a(nn::attention_config{.d_model = 64, .heads = 2});
  nn::init_random(a, 11);
  io::name_map hf;
  for (const auto& [ours, theirs] : {std::pair{"q", "q_proj"}, {"k", "k_proj"}, {"v", "v_proj"}, {"o", "o_proj"}})
    hf.add(std::string(ours) + ".weight", std::string("self_attn.") + theirs + ".weight")
        .add(std::string(ours) + ".bias", std::string("self_attn.") + theirs + ".bias");
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_mapped.safetensors";
  io::save_safetensors(a, path, hf);
  const io::safetensors_file f(path);
  CHECK(f.find("self_attn.v_proj.weight") != nullptr);
  CHECK(f.find("v.weight") == nullptr);
  nn::multi_head_attention<nn::no_rope, quant::q8_0> b(nn::attention_config{.d_model = 64, .heads = 2});
  CHECK(io::load_safetensors(b, f, hf) == 8);  // packed q8_0 bytes as they are
  CHECK(std::memcmp(a.v.weight.data(), b.v.weight.data(), a.v.weight.size_bytes()) == 0);
  CHECK(std::memcmp(a.o.bias.data(), b.o.bias.data(), static_cast<std::size_t>(a.o.bias.numel()) * 4) == 0);

  // a map that only loads: a transposing rule, a chunk, a missing rule, two parameters on one name
  auto fails = [&](io::name_map m, const char* what) {
    const auto msg = test::thrown_message<io_error>([&] { io::save_safetensors(a, path, m); });
    CHECK(msg.find(what) != std::string::npos);
  };
  io::name_map transposed, chunked, partial, twice;
  transposed.add("q.weight", "c_attn.weight", true);
  fails(transposed, "parameter 'q.weight' maps to 'c_attn.weight' transposed or as a chunk");
  chunked.add("q.weight", "c_attn.weight", false, 0, 3);
  fails(chunked, "transposed or as a chunk");
  partial.add("q.weight", "q.weight");
  fails(partial, "no name for parameter 'q.bias'");
  twice.add("*", "same");
  fails(twice, "parameter 'q.bias' maps to 'same', which another parameter maps to too");
  std::filesystem::remove(path);
}

TEST_CASE("a parameter without a rule is reported by name", "[io][checkpoint][errors]") {
  nn::multi_head_attention<> a(nn::attention_config{.d_model = 8, .heads = 2});
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_norule.safetensors";
  io::save_safetensors(a, path);
  io::name_map partial;
  partial.add("q.weight", "q.weight");
  const auto msg = test::thrown_message<io_error>([&] { io::load_safetensors(a, io::safetensors_file(path), partial); });
  CHECK(msg.find("parameter 'k.weight' has no rule") != std::string::npos);
  CHECK(msg.find("extra tensor 'o.bias'") != std::string::npos);
}

TEST_CASE("tensors that cannot be transposed or split are reported with the file in one load report",
          "[io][checkpoint][errors]") {
  nn::multi_head_attention<> a(nn::attention_config{.d_model = 8, .heads = 2});
  nn::init_random(a, 3);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_badtransform.safetensors";
  io::save_safetensors(a, path);
  io::name_map bad;
  bad.add("q.bias", "q.bias", /*transpose=*/true);        // a vector cannot be transposed
  bad.add("k.weight", "k.weight", false, 0, 3);           // 8 rows do not split into 3
  for (const char* p : {"q.weight", "k.bias", "v.weight", "v.bias", "o.weight", "o.bias"}) bad.add(p, p);
  const auto msg = test::thrown_message<io_error>([&] { io::load_safetensors(a, io::safetensors_file(path), bad); });
  CHECK(msg.find(path.string()) != std::string::npos);
  CHECK(msg.find("2 problem(s)") != std::string::npos);
  CHECK(msg.find("'q.bias' [8] cannot be transposed") != std::string::npos);
  CHECK(msg.find("'k.weight' [8, 8] does not split into 3") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("packed formats are saved as their bytes, loaded as they are, and dequantized into other formats",
          "[io][checkpoint][formats]") {
  nn::linear<quant::q8_0> a(64, 5), b(64, 5);
  nn::init_random(a, 8);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_q8_0.safetensors";
  io::save_safetensors(a, path);
  const io::safetensors_file f(path);
  CHECK(f.at("weight").dtype_name == "U8");
  CHECK(f.at("weight").shape == std::vector<std::int64_t>{5, 68});  // 2 blocks of 34 bytes per row
  CHECK(f.metadata().at(io::formats_metadata_key).find("\"q8_0\"") != std::string::npos);
  io::load_safetensors(b, f, io::identity_map(b));
  CHECK(std::memcmp(a.weight.data(), b.weight.data(), a.weight.size_bytes()) == 0);  // no float round trip
  nn::linear<> c(64, 5);  // into f32: dequantized exactly
  io::load_safetensors(c, f, io::identity_map(c));
  const auto want = a.weight.to_float();
  CHECK(std::memcmp(c.weight.view().data(), want.data(), static_cast<std::size_t>(want.numel()) * 4) == 0);
  nn::linear<quant::q8_0> d(64, 5);  // and from F32 into Q8_0: quantized on load
  io::save_safetensors(c, path);
  io::load_safetensors(d, io::safetensors_file(path), io::identity_map(d));
  CHECK(std::memcmp(a.weight.data(), d.weight.data(), a.weight.size_bytes()) == 0);  // q8_0 is idempotent here
  std::filesystem::remove(path);
}

TEST_CASE("a chunk of a packed tensor's rows loads as a slice of its bytes", "[io][checkpoint][formats]") {
  nn::linear<quant::q8_0> fused(64, 6);  // a fused projection: three parts of 2 rows
  nn::init_random(fused, 11);
  const auto path = std::filesystem::temp_directory_path() / "tformer_test_q8_0_chunks.safetensors";
  io::save_safetensors(fused, path);
  const io::safetensors_file f(path);
  for (int part = 0; part < 3; ++part) {
    nn::linear<quant::q8_0> p(64, 2, /*bias=*/false);
    io::name_map m;
    m.add("weight", "weight", false, part, 3).ignore("bias");
    io::load_safetensors(p, f, m);
    CHECK(std::memcmp(p.weight.data(), fused.weight.row(2 * part), p.weight.size_bytes()) == 0);  // no float round trip
  }
  nn::linear<quant::q8_0> wrong(64, 3, /*bias=*/false);
  io::name_map m;
  m.add("weight", "weight", false, 1, 3).ignore("bias");
  const auto msg = test::thrown_message<io_error>([&] { io::load_safetensors(wrong, f, m); });
  CHECK(msg.find("tensor 'weight' has shape [2, 64] (one chunk) but parameter 'weight' needs [3, 64]") != std::string::npos);
  std::filesystem::remove(path);
}
