// Name maps (patterns, transposes, fused-tensor chunks), loading reports, and save/load round trips.
#include <tformer/io/checkpoint.hpp>
#include <tformer/nn/attention.hpp>
#include <tformer/nn/parameters.hpp>

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
