// GGUF: files written by gguf-py (the reference implementation, tools/make_gguf_fixtures.py) read
// back exactly; tformer's writer read back by its reader and equal byte for byte to gguf-py's
// layout; and every rule of the format enforced with an io_error naming the file, the byte
// offset and the key or tensor, each on bytes built here.
#include <tformer/io/gguf.hpp>

#include <tformer/io/safetensors.hpp>
#include <tformer/nn/linear.hpp>
#include <tformer/nn/parameters.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"

namespace fs = std::filesystem;
using namespace tformer;
using io::gguf_file;
using io::gguf_type;
using io::gguf_value;

namespace {

const std::string data_dir = TFORMER_TEST_DATA_DIR;

// Little-endian GGUF bytes, built field by field; size() before a field is that field's offset.
struct gguf_bytes {
  std::vector<std::uint8_t> b;

  std::uint64_t size() const { return b.size(); }
  gguf_bytes& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  gguf_bytes& u8(std::uint8_t v) { return le(v, 1); }
  gguf_bytes& u32(std::uint32_t v) { return le(v, 4); }
  gguf_bytes& u64(std::uint64_t v) { return le(v, 8); }
  gguf_bytes& i64(std::int64_t v) { return le(static_cast<std::uint64_t>(v), 8); }
  gguf_bytes& f32(float v) { return u32(std::bit_cast<std::uint32_t>(v)); }
  gguf_bytes& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  gguf_bytes& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  gguf_bytes& zeros(std::uint64_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  gguf_bytes& pad(std::uint64_t alignment) { return zeros((alignment - size() % alignment) % alignment); }
  // "GGUF", version, tensor count, kv count
  gguf_bytes& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  gguf_bytes& kv_u32(const std::string& key, std::uint32_t v) { return str(key).u32(4).u32(v); }
  gguf_bytes& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  // name, n_dims, ne[] (innermost first), type, offset
  gguf_bytes& info(const std::string& name, std::vector<std::int64_t> ne, std::uint32_t type, std::uint64_t offset) {
    str(name).u32(static_cast<std::uint32_t>(ne.size()));
    for (auto e : ne) i64(e);
    return u32(type).u64(offset);
  }
  gguf_bytes truncated(std::uint64_t n) const {
    gguf_bytes c;
    c.b.assign(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    return c;
  }
};

fs::path write_file(const std::string& name, const gguf_bytes& bytes) {
  const fs::path p = fs::temp_directory_path() / ("tformer_test_gguf_" + name + ".gguf");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.b.data()), static_cast<std::streamsize>(bytes.b.size()));
  return p;
}

// Opening must fail with an io_error naming the file, "at byte <at>", and every fragment.
void expect_rejected(const std::string& name, const gguf_bytes& bytes, std::uint64_t at,
                     std::initializer_list<std::string> fragments) {
  const auto p = write_file(name, bytes);
  try {
    gguf_file f(p);
    FAIL("expected io_error for " << name);
  } catch (const io_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("gguf file '" + p.string() + "'") != std::string::npos);
    CHECK(msg.find("at byte " + std::to_string(at) + ":") != std::string::npos);
    for (const auto& f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
}

// The message of the exception fn throws as E.
template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

// A valid file: one key, tensors "a" F32 [3] at 0 and "b" Q8_0 ne {32, 2} at 32.
gguf_bytes valid_file(std::uint32_t version = 3) {
  gguf_bytes g;
  g.header(2, 1, version).kv_str("general.name", "t");
  g.info("a", {3}, 0, 0).info("b", {32, 2}, 8, 32).pad(32);
  g.f32(1).f32(2).f32(3).pad(32);
  for (int blk = 0; blk < 2; ++blk) {
    g.le(0x3C00, 2);  // d = 1
    for (int j = 0; j < 32; ++j) g.u8(static_cast<std::uint8_t>(j - 16));
  }
  return g.pad(32);
}

bool same_bits(const float* a, const float* b, std::int64_t n) {
  return n == 0 || std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(float)) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// files from gguf-py

TEST_CASE("gguf-py's file: header, every metadata value type, nested arrays", "[gguf]") {
  gguf_file f(data_dir + "/gguf_reference.gguf");
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.metadata().size() == 25);
  CHECK(f.metadata()[0].key == "general.architecture");  // gguf-py's writer adds it first
  CHECK(f.get_string("general.architecture") == "tformer-test");

  const auto type_of = [&](const char* k) { return f.find_metadata(k)->type; };
  CHECK(type_of("test.u8") == gguf_type::u8);
  CHECK(type_of("test.i8") == gguf_type::i8);
  CHECK(type_of("test.u16") == gguf_type::u16);
  CHECK(type_of("test.i16") == gguf_type::i16);
  CHECK(type_of("test.u32") == gguf_type::u32);
  CHECK(type_of("test.i32") == gguf_type::i32);
  CHECK(type_of("test.f32") == gguf_type::f32);
  CHECK(type_of("test.bool_true") == gguf_type::boolean);
  CHECK(type_of("test.string") == gguf_type::string);
  CHECK(type_of("test.u64") == gguf_type::u64);
  CHECK(type_of("test.i64") == gguf_type::i64);
  CHECK(type_of("test.f64") == gguf_type::f64);
  CHECK(type_of("test.array.u8") == gguf_type::array);

  CHECK(f.get_int("test.u8") == 200);
  CHECK(f.get_int("test.i8") == -100);
  CHECK(f.get_int("test.u16") == 60000);
  CHECK(f.get_int("test.i16") == -30000);
  CHECK(f.get_int("test.u32") == 4000000000);
  CHECK(f.get_int("test.i32") == -2000000000);
  CHECK(f.get_float("test.f32") == static_cast<double>(3.14159f));
  CHECK(f.get_bool("test.bool_true"));
  CHECK_FALSE(f.get_bool("test.bool_false"));
  CHECK(f.get_string("test.string") == "h\xC3\xA9llo, gguf \xE2\x9C\x93");
  CHECK(f.get_string("test.empty_string").empty());
  CHECK(std::get<std::uint64_t>(f.find_metadata("test.u64")->data) == UINT64_MAX);
  CHECK(f.get_int("test.i64") == INT64_MIN);
  CHECK(f.get_float("test.f64") == 2.718281828459045);

  CHECK(f.get_ints("test.array.u8") == std::vector<std::int64_t>{0, 1, 255});
  CHECK(f.find_metadata("test.array.u8")->array()->type == gguf_type::u8);
  CHECK(f.get_ints("test.array.i16") == std::vector<std::int64_t>{-32768, 32767});
  CHECK(f.get_ints("test.array.i32") == std::vector<std::int64_t>{1, -2, 3});
  CHECK(f.get_floats("test.array.f32") == std::vector<double>{0.5, -1.25, static_cast<double>(1e-3f)});
  const auto f64s = f.get_floats("test.array.f64");
  REQUIRE(f64s.size() == 2);
  CHECK(f64s[0] == 1e300);
  CHECK(std::signbit(f64s[1]));
  const auto* bools = f.find_metadata("test.array.bool")->array();
  REQUIRE(bools->items.size() == 3);
  CHECK(std::get<bool>(bools->items[0].data));
  CHECK_FALSE(std::get<bool>(bools->items[1].data));
  CHECK(f.get_strings("test.array.string") == std::vector<std::string>{"<s>", "</s>", "\xE2\x96\x81the", ""});

  // [[1, 2], [3], [4, 5, 6]] as ARRAY of ARRAY of INT32
  const auto* nested = f.find_metadata("test.array.nested")->array();
  REQUIRE(nested->type == gguf_type::array);
  REQUIRE(nested->items.size() == 3);
  CHECK(nested->items[2] == gguf_value::from(std::vector<std::int32_t>{4, 5, 6}));
  CHECK(*f.find_metadata("test.array.nested_strings") ==
        gguf_value::from(std::vector<std::vector<std::string>>{{"a"}, {"b", "c"}}));
  CHECK(f.find_metadata("test.array.nested")->type_string() == "ARRAY of ARRAY");
  CHECK(f.find_metadata("no.such.key") == nullptr);
}

TEST_CASE("gguf-py's file: tensor infos agree with gguf-py's reader", "[gguf]") {
  gguf_file f(data_dir + "/gguf_reference.gguf");
  io::safetensors_file expected(data_dir + "/gguf_reference.expected.safetensors");
  const auto ref = nlohmann::json::parse(expected.metadata().at("reference"));
  CHECK(f.version() == ref["version"].get<std::uint32_t>());
  CHECK(f.alignment() == ref["alignment"].get<std::uint64_t>());
  CHECK(f.data_offset() == ref["data_offset"].get<std::uint64_t>());
  REQUIRE(f.tensors().size() == ref["tensors"].size());
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& t = f.tensors()[i];
    const auto& r = ref["tensors"][i];
    INFO(t.name);
    CHECK(t.name == r["name"].get<std::string>());
    CHECK(t.ggml_type == r["type"].get<std::uint32_t>());
    auto ne = r["ne"].get<std::vector<std::int64_t>>();
    CHECK(t.shape == std::vector<std::int64_t>(ne.rbegin(), ne.rend()));
    CHECK(t.offset == r["offset"].get<std::uint64_t>());
    CHECK(t.bytes == r["bytes"].get<std::uint64_t>());
    CHECK(f.find(t.name) == &t);
  }
  CHECK(f.at("q8_0.rank3").type_name == "Q8_0");
  CHECK(f.at("q8_0.rank3").shape == std::vector<std::int64_t>{2, 2, 64});
  CHECK(f.at("q8_0.rank3").rows() == 4);
  CHECK(f.at("q8_0.rank3").cols() == 64);
  CHECK(f.at("bf16.rank3").type_name == "BF16");
  CHECK(f.at("f16.rank2").type_name == "F16");
  const auto msg = message_of<io_error>([&] { (void)f.at("missing.weight"); });
  CHECK(msg.find("missing.weight") != std::string::npos);
  CHECK(msg.find("gguf_reference.gguf") != std::string::npos);
}

TEST_CASE("gguf-py's file: values equal gguf-py's dequantization bit for bit", "[gguf]") {
  for (const char* name : {"gguf_reference", "gguf_aligned64"}) {
    gguf_file f(data_dir + "/" + name + ".gguf");
    io::safetensors_file expected(data_dir + "/" + name + ".expected.safetensors");
    int checked = 0;
    for (const auto& t : f.tensors()) {
      if (!expected.find(t.name)) continue;
      INFO(name << ": " << t.name);
      const auto want = expected.load<float>(t.name);
      const auto got = f.load_float(t.name);
      REQUIRE(static_cast<std::size_t>(got.rank()) == t.shape.size());
      for (int d = 0; d < got.rank(); ++d) CHECK(got.dim(d) == t.shape[static_cast<std::size_t>(d)]);
      REQUIRE(got.numel() == want.numel());
      CHECK(same_bits(got.data(), want.data(), got.numel()));
      ++checked;

      // tformer's own quantizer gives gguf-py's bytes (both follow ggml's reference rounding)
      const auto source = expected.load<float>(t.name + ".source");
      const tensor_view<const float> rows(source.data(), shape{t.rows(), t.cols()});
      const auto stored = f.bytes(t);
      bool formatted = quant::visit_ggml_type(t.ggml_type, [&](auto fmt) {
        using F = decltype(fmt);
        const auto m = quant::matrix<F>::quantize(rows);
        REQUIRE(m.size_bytes() == stored.size());
        CHECK(std::memcmp(m.data(), stored.data(), stored.size()) == 0);
      });
      CHECK(formatted);
    }
    CHECK(checked == (std::string(name) == "gguf_reference" ? 8 : 2));
  }
}

TEST_CASE("gguf-py's file: read into matrices, as stored or converted", "[gguf]") {
  gguf_file f(data_dir + "/gguf_reference.gguf");
  // Same type: the bytes as they are.
  quant::matrix<quant::q8_0> q;
  f.read("q8_0.rank3", q);
  CHECK(q.shape() == shape{4, 64});
  CHECK(std::memcmp(q.data(), f.bytes(f.at("q8_0.rank3")).data(), q.size_bytes()) == 0);
  quant::matrix<quant::bf16> b(6, 4);
  f.read("bf16.rank3", b);
  CHECK(std::memcmp(b.data(), f.bytes(f.at("bf16.rank3")).data(), b.size_bytes()) == 0);

  // Another type: dequantized, then quantized to the matrix's format.
  quant::matrix<quant::f32> qf;
  f.read("q8_0.rank2", qf);
  const auto want = f.load_float("q8_0.rank2");
  CHECK(same_bits(reinterpret_cast<const float*>(qf.data()), want.data(), want.numel()));
  quant::matrix<quant::bf16> qb;
  f.read("q8_0.rank2", qb);
  const auto want_b = quant::matrix<quant::bf16>::quantize(want);
  CHECK(std::memcmp(qb.data(), want_b.data(), qb.size_bytes()) == 0);
  quant::matrix<quant::f32> r3;
  f.read("f32.rank3", r3);  // [2, 1, 3]: 2 rows of 3
  CHECK(r3.shape() == shape{2, 3});

  // Shape mismatch; a format whose blocks do not divide ne[0].
  quant::matrix<quant::f32> wrong(3, 3);
  const auto shape_msg = message_of<shape_error>([&] { f.read("f16.rank2", wrong); });
  CHECK(shape_msg.find("'f16.rank2'") != std::string::npos);
  CHECK(shape_msg.find("[3, 5]") != std::string::npos);
  quant::matrix<quant::q8_0> blocks;
  CHECK_THROWS_AS(f.read("f32.rank1", blocks), shape_error);

  // Types tformer has no format for.
  // gguf-py's Q5_K tensor (random bytes) reads as quant::q5_k, as it is, and loads as its floats.
  quant::matrix<quant::q5_k> q5k;
  f.read("q5_k.rank2", q5k);
  CHECK(q5k.shape() == shape{1, 256});
  CHECK(std::memcmp(q5k.data(), f.bytes(f.at("q5_k.rank2")).data(), q5k.size_bytes()) == 0);
  const auto q5k_float = f.load_float("q5_k.rank2");
  const auto q5k_want = q5k.to_float();
  CHECK(std::memcmp(q5k_float.data(), q5k_want.data(), 256 * sizeof(float)) == 0);

  for (const auto& [name, type] : {std::pair{"i32.rank1", "I32"}}) {
    const auto msg = message_of<dtype_error>([&] { (void)f.load_float(name); });
    CHECK(msg.find(std::string("unsupported type ") + type + " for tensor '" + name + "'") != std::string::npos);
    CHECK(msg.find("gguf_reference.gguf") != std::string::npos);
    quant::matrix<quant::f32> m;
    CHECK_THROWS_AS(f.read(name, m), dtype_error);
  }
  CHECK(f.at("i32.rank1").bytes == 16);  // still readable as bytes
  std::int32_t last;
  std::memcpy(&last, f.bytes(f.at("i32.rank1")).data() + 12, 4);
  CHECK(last == 2147483647);
}

TEST_CASE("gguf-py's file with general.alignment 64", "[gguf]") {
  gguf_file f(data_dir + "/gguf_aligned64.gguf");
  CHECK(f.alignment() == 64);
  CHECK(f.get_int("general.alignment") == 64);
  CHECK(f.data_offset() % 64 == 0);
  CHECK(f.at("b").offset == f.data_offset() + 64);
  CHECK(f.get_string("test.note") == "aligned to 64");
}

TEST_CASE("typed getters name the file and the key", "[gguf]") {
  gguf_file f(data_dir + "/gguf_reference.gguf");
  const auto check = [&](auto&& fn, std::initializer_list<std::string> fragments) {
    const auto msg = message_of<io_error>(fn);
    INFO(msg);
    CHECK(msg.find("gguf_reference.gguf") != std::string::npos);
    for (const auto& s : fragments) CHECK(msg.find(s) != std::string::npos);
  };
  check([&] { (void)f.get_string("test.u32"); }, {"key 'test.u32'", "is UINT32", "expected a STRING", "at byte 160"});
  check([&] { (void)f.get_int("no.such"); }, {"no key 'no.such'"});
  check([&] { (void)f.get_int("test.u64"); }, {"key 'test.u64'", "18446744073709551615", "int64"});
  check([&] { (void)f.get_int("test.f32"); }, {"key 'test.f32'", "is FLOAT32", "integer"});
  check([&] { (void)f.get_float("test.i32"); }, {"key 'test.i32'", "is INT32"});
  check([&] { (void)f.get_bool("test.u8"); }, {"key 'test.u8'", "BOOL"});
  check([&] { (void)f.get_strings("test.array.i32"); }, {"ARRAY of INT32", "ARRAY of STRING"});
  check([&] { (void)f.get_ints("test.array.nested"); }, {"ARRAY of ARRAY"});
  check([&] { (void)f.get_ints("test.array.u64"); }, {"element 1", "int64"});
  check([&] { (void)f.get_floats("test.string"); }, {"is STRING"});
}

// ---------------------------------------------------------------------------------------------
// writer

TEST_CASE("the writer lays a file out as gguf-py does, byte for byte", "[gguf][writer]") {
  // Rewriting gguf-py's file through tformer's writer (same keys, types, tensors) gives its bytes.
  for (const char* name : {"gguf_reference", "gguf_aligned64"}) {
    gguf_file f(data_dir + "/" + name + ".gguf");
    io::gguf_writer w;
    for (const auto& kv : f.metadata()) w.add(kv.key, kv.value);
    for (const auto& t : f.tensors()) w.add_raw(t.name, t.ggml_type, t.shape, f.bytes(t));
    std::ostringstream out;
    w.write(out);
    const std::string ours = out.str();
    std::ifstream in(data_dir + "/" + name + ".gguf", std::ios::binary);
    const std::string theirs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(name);
    CHECK(ours.size() == theirs.size());
    CHECK(ours == theirs);
  }
}

TEST_CASE("writer round trip: every value type, every ggml format, alignments", "[gguf][writer]") {
  tensor<float> w_src(shape{3, 64});
  for (std::int64_t i = 0; i < w_src.numel(); ++i) w_src.data()[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  const auto q = quant::matrix<quant::q8_0>::quantize(w_src);
  const auto h = quant::matrix<quant::f16>::quantize(w_src);
  const auto bh = quant::matrix<quant::bf16>::quantize(w_src);
  const auto full = quant::matrix<quant::f32>::quantize(w_src);
  tensor<float> t3(shape{2, 3, 5});
  for (std::int64_t i = 0; i < t3.numel(); ++i) t3.data()[i] = 0.25f * static_cast<float>(i) - 2.0f;
  tensor<bf16> tb(shape{5}, bf16(1.5f));
  tensor<std::int32_t> ti(shape{2, 2}, 7);
  tensor<float> scalar(shape{}, 42.0f);
  tensor<float> empty(shape{0, 4});

  for (std::uint32_t alignment : {0u, 1u, 64u}) {  // 0: the default, 32
    INFO("alignment " << alignment);
    io::gguf_writer w;
    w.add("general.architecture", "tformer")
        .add("u8", std::uint8_t{255})
        .add("i8", std::int8_t{-128})
        .add("u16", std::uint16_t{65535})
        .add("i16", std::int16_t{-32768})
        .add("u32", std::uint32_t{4294967295u})
        .add("i32", -7)
        .add("f32", 0.1f)
        .add("bool", true)
        .add("string", std::string("s\0t", 3))
        .add("u64", std::uint64_t{UINT64_MAX})
        .add("i64", std::int64_t{INT64_MIN})
        .add("f64", 0.1)
        .add("strings", std::vector<std::string>{"a", "", "ccc"})
        .add("floats", std::vector<float>{1.5f, -0.0f})
        .add("bools", std::vector<bool>{true, false})
        .add("empty", std::vector<std::int32_t>{})
        .add("nested", std::vector<std::vector<std::int16_t>>{{1}, {}, {2, 3}})
        .add("value", gguf_value::make_array(gguf_type::u64, {gguf_value::from(std::uint64_t{5})}));
    if (alignment) w.add("general.alignment", alignment);
    w.add_tensor("q", q).add_tensor("h", h).add_tensor("bh", bh).add_tensor("full", full);
    w.add_tensor("t3", t3).add_tensor("tb", tb).add_tensor("ti", ti).add_tensor("scalar", scalar);
    w.add_tensor("empty", empty);
    const auto p = fs::temp_directory_path() / ("tformer_test_gguf_roundtrip_" + std::to_string(alignment) + ".gguf");
    w.write(p);

    gguf_file f(p);
    CHECK(f.version() == 3);
    CHECK(f.alignment() == (alignment ? alignment : 32));
    CHECK(f.get_int("u8") == 255);
    CHECK(f.get_int("i8") == -128);
    CHECK(f.get_int("u16") == 65535);
    CHECK(f.get_int("i16") == -32768);
    CHECK(f.get_int("u32") == 4294967295);
    CHECK(f.find_metadata("i32")->type == gguf_type::i32);
    CHECK(f.get_float("f32") == static_cast<double>(0.1f));
    CHECK(f.get_bool("bool"));
    CHECK(f.get_string("string") == std::string("s\0t", 3));
    CHECK(f.find_metadata("u64")->data == decltype(gguf_value::data){std::uint64_t{UINT64_MAX}});
    CHECK(f.get_int("i64") == INT64_MIN);
    CHECK(f.get_float("f64") == 0.1);
    CHECK(f.get_strings("strings") == std::vector<std::string>{"a", "", "ccc"});
    CHECK(f.get_floats("floats") == std::vector<double>{1.5, 0.0});
    CHECK(*f.find_metadata("bools") == gguf_value::from(std::vector<bool>{true, false}));
    CHECK(f.get_ints("empty").empty());
    CHECK(f.find_metadata("empty")->array()->type == gguf_type::i32);
    CHECK(*f.find_metadata("nested") == gguf_value::from(std::vector<std::vector<std::int16_t>>{{1}, {}, {2, 3}}));
    CHECK(f.get_ints("value") == std::vector<std::int64_t>{5});

    for (const auto& t : f.tensors()) CHECK(t.offset % f.alignment() == 0);
    CHECK(f.at("q").type_name == "Q8_0");
    CHECK(f.at("q").shape == std::vector<std::int64_t>{3, 64});
    CHECK(std::memcmp(f.bytes(f.at("q")).data(), q.data(), q.size_bytes()) == 0);
    const auto wq = q.to_float();
    CHECK(same_bits(f.load_float("q").data(), wq.data(), wq.numel()));
    // f16 / bf16 values at any alignment (1: rows may start at odd addresses)
    const auto wh = h.to_float();
    CHECK(same_bits(f.load_float("h").data(), wh.data(), wh.numel()));
    const auto wbh = bh.to_float();
    CHECK(same_bits(f.load_float("bh").data(), wbh.data(), wbh.numel()));
    CHECK(same_bits(f.load_float("full").data(), w_src.data(), w_src.numel()));
    const auto g3 = f.load_float("t3");
    CHECK(g3.shape() == shape{2, 3, 5});
    CHECK(same_bits(g3.data(), t3.data(), t3.numel()));
    CHECK(f.load_float("tb")(4) == 1.5f);
    CHECK(f.at("ti").type_name == "I32");
    CHECK(f.at("scalar").shape.empty());
    CHECK(f.load_float("scalar").data()[0] == 42.0f);
    CHECK(f.at("empty").bytes == 0);
    CHECK(f.load_float("empty").shape() == shape{0, 4});
    quant::matrix<quant::q8_0> requant;  // F32 in the file, quantized on reading
    f.read("full", requant);
    CHECK(std::memcmp(requant.data(), q.data(), q.size_bytes()) == 0);
  }
}

namespace {
// A format with no ggml type (save_gguf must refuse it).
struct plain_f32 {
  static constexpr const char* name = "plain_f32";
  static constexpr std::int64_t block_size = 1;
  static constexpr std::int64_t block_bytes = 4;
  static constexpr double bits_per_weight = 32.0;
  static void quantize_row(const float* x, std::byte* b, std::int64_t n) { quant::f32::quantize_row(x, b, n); }
  static void dequantize_row(const std::byte* b, float* y, std::int64_t n) { quant::f32::dequantize_row(b, y, n); }
};
static_assert(quant::weight_format<plain_f32> && !quant::ggml_format<plain_f32>);

template <class F>
struct tiny_model {
  nn::linear<quant::q8_0> proj{64, 2};
  quant::matrix<F> table{3, 32};
  tensor<bf16> scale{shape{2}, bf16(0.5f)};
  template <class V>
  void visit(V&& v, const std::string& prefix) {
    proj.visit(v, prefix + "proj.");
    v(prefix + "table", table);
    v(prefix + "scale", scale);
  }
};
}  // namespace

TEST_CASE("save_gguf writes a model's parameters; formats without a ggml type are refused", "[gguf][writer]") {
  static_assert(quant::ggml_format<quant::f32> && quant::ggml_format<quant::f16> && quant::ggml_format<quant::bf16> &&
                quant::ggml_format<quant::q8_0>);
  tiny_model<quant::f16> m;
  nn::init_random(m, 7);
  const auto p = fs::temp_directory_path() / "tformer_test_gguf_model.gguf";
  io::save_gguf(m, p, {{"general.architecture", gguf_value::from("tiny")}, {"tiny.layers", gguf_value::from(1u)}});
  gguf_file f(p);
  CHECK(f.get_string("general.architecture") == "tiny");
  CHECK(f.get_int("tiny.layers") == 1);
  REQUIRE(f.tensors().size() == 4);
  CHECK(f.tensors()[0].name == "proj.weight");
  CHECK(f.at("proj.weight").type_name == "Q8_0");
  CHECK(f.at("proj.weight").shape == std::vector<std::int64_t>{2, 64});
  CHECK(f.at("proj.bias").type_name == "F32");
  CHECK(f.at("table").type_name == "F16");
  CHECK(f.at("scale").type_name == "BF16");
  m.visit(
      [&](const std::string& name, auto& param) {
        using P = std::remove_cvref_t<decltype(param)>;
        if constexpr (quant::is_matrix<P>) {
          P copy;
          f.read(name, copy);
          CHECK(std::memcmp(copy.data(), param.data(), param.size_bytes()) == 0);
        } else {
          CHECK(std::memcmp(f.bytes(f.at(name)).data(), param.data(), f.at(name).bytes) == 0);
        }
      },
      "");

  tiny_model<plain_f32> bad;
  const auto p2 = fs::temp_directory_path() / "tformer_test_gguf_model_bad.gguf";
  fs::remove(p2);
  const auto msg = message_of<dtype_error>([&] { io::save_gguf(bad, p2); });
  CHECK(msg.find("parameter 'table'") != std::string::npos);
  CHECK(msg.find("plain_f32") != std::string::npos);
  CHECK_FALSE(fs::exists(p2));  // nothing written
}

TEST_CASE("the writer refuses what would make an invalid file", "[gguf][writer]") {
  io::gguf_writer w;
  w.add("k", 1);
  CHECK_THROWS_AS(w.add("k", 2), value_error);
  CHECK_THROWS_AS(w.add("general.alignment", 32), value_error);                // INT32, not UINT32
  CHECK_THROWS_AS(w.add("general.alignment", std::uint32_t{48}), value_error);  // not a power of two
  CHECK_THROWS_AS(w.add("general.alignment", std::uint32_t{0}), value_error);
  gguf_value bad;
  bad.type = gguf_type::u8;
  bad.data = std::uint64_t{256};
  CHECK_THROWS_AS(w.add("bad", bad), value_error);
  bad.type = gguf_type::i32;  // holds an unsigned
  CHECK_THROWS_AS(w.add("bad", bad), value_error);
  CHECK_THROWS_AS(gguf_value::make_array(gguf_type::string, {gguf_value::from(1)}), value_error);
  CHECK_THROWS_AS(gguf_value::from(std::vector<gguf_value>{}), value_error);
  gguf_value deep = gguf_value::from(std::vector<int>{1});
  for (int i = 0; i < 15; ++i) deep = gguf_value::make_array(gguf_type::array, {deep});
  CHECK_NOTHROW(w.add("deep16", deep));  // 16 levels of arrays: the most a reader accepts
  deep = gguf_value::make_array(gguf_type::array, {deep});
  CHECK_THROWS_AS(w.add("deep17", deep), value_error);

  quant::matrix<quant::q8_0> m(2, 32);
  w.add_tensor("m", m);
  CHECK_THROWS_AS(w.add_tensor("m", m), value_error);
  const std::vector<std::byte> bytes(10);
  CHECK_THROWS_AS(w.add_raw("r", 8, {2, 32}, bytes), value_error);   // needs 68 bytes
  CHECK_THROWS_AS(w.add_raw("r", 4, {10}, bytes), value_error);      // removed type
  CHECK_THROWS_AS(w.add_raw("r", 8, {10}, bytes), value_error);      // not a block multiple
  CHECK_THROWS_AS(w.add_raw("r", 0, {1, 1, 1, 1, 1}, bytes), value_error);  // rank 5
  CHECK_NOTHROW(w.add_raw("r", 24, {10}, bytes));                    // I8
}

TEST_CASE("visit_ggml_type finds the format of a ggml type id", "[gguf][formats]") {
  for (std::uint32_t id : {0u, 1u, 8u, 30u}) {
    std::uint32_t seen = 999;
    CHECK(quant::visit_ggml_type(id, [&](auto fmt) { seen = decltype(fmt)::ggml_type; }));
    CHECK(seen == id);
  }
  bool called = false;
  CHECK_FALSE(quant::visit_ggml_type(16, [&](auto) { called = true; }));  // IQ2_XXS: no tformer format
  CHECK_FALSE(quant::visit_ggml_type(4000, [&](auto) { called = true; }));
  CHECK_FALSE(called);
  // The type table agrees with the formats that declare a ggml type.
  quant::visit_ggml_type(8, [](auto fmt) {
    using F = decltype(fmt);
    CHECK(io::ggml_types[8].block_size == F::block_size);
    CHECK(io::ggml_types[8].block_bytes == F::block_bytes);
  });
  CHECK(io::find_ggml_type(39)->name == "MXFP4");
  CHECK(io::find_ggml_type(39)->block_bytes == 17);
  CHECK(io::find_ggml_type(4) == nullptr);
  CHECK(io::find_ggml_type(5) == nullptr);
  CHECK(io::find_ggml_type(31) == nullptr);
  CHECK(io::find_ggml_type(36) == nullptr);
  CHECK(io::find_ggml_type(42) == nullptr);
}

// ---------------------------------------------------------------------------------------------
// malformed files: one rule each

TEST_CASE("a valid hand-built file, in versions 2 and 3", "[gguf][rules]") {
  for (std::uint32_t v : {2u, 3u}) {
    gguf_file f(write_file("valid_v" + std::to_string(v), valid_file(v)));
    CHECK(f.version() == v);
    CHECK(f.load_float("a")(2) == 3.0f);
    CHECK(f.load_float("b")(1, 31) == 15.0f);
  }
  // No tensors, no metadata; bytes after the data, or a last tensor's padding missing, are accepted.
  gguf_file empty(write_file("empty", gguf_bytes{}.header(0, 0)));
  CHECK(empty.tensors().empty());
  auto trailing = valid_file();
  trailing.raw("trailing");
  CHECK_NOTHROW(gguf_file(write_file("trailing", trailing)));
  const auto unpadded = valid_file().truncated(valid_file().size() - 28);  // b's data ends 28 bytes before
  CHECK_NOTHROW(gguf_file(write_file("unpadded", unpadded)));
  // A rank-0 tensor holds one element.
  gguf_bytes scalar;
  scalar.header(1, 0).info("s", {}, 0, 0).pad(32).f32(-2.5f);
  gguf_file s(write_file("scalar", scalar));
  CHECK(s.at("s").bytes == 4);
  CHECK(s.load_float("s").data()[0] == -2.5f);
}

TEST_CASE("rule: the magic", "[gguf][rules]") {
  expect_rejected("magic_short", gguf_bytes{}.raw("GG"), 0, {"truncated", "the magic", "2 remain"});
  expect_rejected("magic_empty", gguf_bytes{}, 0, {"truncated"});
  expect_rejected("magic_bad", gguf_bytes{}.raw("GGML").u32(3).u64(0).u64(0), 0, {"bad magic", "47 47 4D 4C"});
}

TEST_CASE("rule: the version is 2 or 3", "[gguf][rules]") {
  expect_rejected("v1", gguf_bytes{}.header(0, 0, 1), 4, {"version 1 is not supported"});
  expect_rejected("v0", gguf_bytes{}.header(0, 0, 0), 4, {"unsupported GGUF version 0"});
  expect_rejected("v4", gguf_bytes{}.header(0, 0, 4), 4, {"unsupported GGUF version 4"});
  expect_rejected("v_big_endian", gguf_bytes{}.header(0, 0, 0x03000000), 4, {"big-endian"});
  expect_rejected("v_truncated", gguf_bytes{}.raw("GGUF").u8(3), 4, {"truncated", "the version"});
}

TEST_CASE("rule: counts are non-negative and fit in the file", "[gguf][rules]") {
  expect_rejected("count_truncated", gguf_bytes{}.raw("GGUF").u32(3).u64(0).u32(0), 16, {"truncated", "metadata count"});
  expect_rejected("tensors_negative", gguf_bytes{}.header(static_cast<std::uint64_t>(-1), 0), 8,
                  {"tensor count -1 is negative"});
  expect_rejected("kv_negative", gguf_bytes{}.header(0, 1ull << 63), 16, {"metadata count", "is negative"});
  // 2^40 tensor infos cannot come from 100 bytes: refused before anything is allocated
  expect_rejected("tensors_absurd", gguf_bytes{}.header(1ull << 40, 0).zeros(100), 8,
                  {"tensor count 1099511627776 cannot fit in the 100 bytes"});
  expect_rejected("kv_absurd", gguf_bytes{}.header(0, 8).zeros(100), 16, {"metadata count 8 cannot fit"});
}

TEST_CASE("rule: strings stay inside the file", "[gguf][rules]") {
  // a key claiming 2^62 bytes
  gguf_bytes g;
  g.header(0, 1);
  const auto at = g.size();
  g.u64(1ull << 62).raw("abcdefgh");
  expect_rejected("key_past_end", g, at, {"metadata key", "entry 0", "runs past the end", "4611686018427387904"});
  // a string value one byte short
  gguf_bytes v;
  v.header(0, 1).str("k").u32(8);
  const auto vat = v.size();
  v.u64(5).raw("abcd");
  expect_rejected("value_past_end", v, vat, {"key 'k'", "STRING value", "runs past the end"});
  // a string inside an array
  gguf_bytes a;
  a.header(0, 1).str("arr").u32(9).u32(8).u64(2).str("ok");
  const auto aat = a.size();
  a.u64(100).raw("short");
  expect_rejected("array_string_past_end", a, aat, {"key 'arr'", "runs past the end"});
}

TEST_CASE("rule: a truncated value or tensor info is reported where the read fell off", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 1).str("k").u32(4);
  const auto at = g.size();
  g.u32(7).zeros(20);
  expect_rejected("value_truncated", g.truncated(at + 2), at, {"truncated", "a UINT32 value", "key 'k'", "2 remain"});

  gguf_bytes t;
  t.header(1, 0).str("t").u32(2).i64(32);
  const auto ne1 = t.size();
  t.i64(2).u32(0).u64(0);
  expect_rejected("info_truncated", t.truncated(ne1 + 3), ne1, {"truncated", "extent", "tensor 't'"});
  const auto whole = t.size();
  expect_rejected("offset_truncated", t.truncated(whole - 1), whole - 8, {"truncated", "data offset", "tensor 't'"});

  // Every cut of a valid file is refused with an io_error naming it.
  const auto full = valid_file();
  for (std::uint64_t n = 0; n + 28 < full.size(); ++n) {  // the last 28 bytes are b's padding
    const auto p = write_file("cut", full.truncated(n));
    INFO("cut at " << n);
    try {
      gguf_file f(p);
      FAIL("accepted");
    } catch (const io_error& e) {
      CHECK(std::string(e.what()).find(p.string()) != std::string::npos);
    }
  }
}

TEST_CASE("rule: metadata keys are unique", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 2).kv_u32("a", 1);
  const auto at = g.size();
  g.kv_u32("a", 2);
  expect_rejected("dup_key", g, at, {"duplicate key 'a'", "first at byte 24"});
}

TEST_CASE("rule: value types are the 13 GGUF defines", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 1).str("k");
  const auto at = g.size();
  g.u32(13).u64(0);
  expect_rejected("value_type", g, at, {"unknown value type 13", "key 'k'"});
  gguf_bytes a;
  a.header(0, 1).str("arr").u32(9);
  const auto aat = a.size();
  a.u32(77).u64(0);
  expect_rejected("array_type", a, aat, {"unknown value type 77", "key 'arr'"});
  // every defined type is accepted, as a scalar and as an array element (zero bytes: 0, false, "")
  const std::uint64_t width[13] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};  // an ARRAY: type u32, length 0
  for (std::uint32_t t = 0; t <= 12; ++t) {
    INFO("type " << t);
    gguf_bytes scalar;
    scalar.header(0, 1).str("k").u32(t).zeros(width[t]);
    gguf_file fs(write_file("each_type", scalar));
    CHECK(fs.find_metadata("k")->type == static_cast<gguf_type>(t));
    gguf_bytes array;
    array.header(0, 1).str("k").u32(9).u32(t).u64(1).zeros(width[t]);
    gguf_file fa(write_file("each_type_array", array));
    CHECK(fa.find_metadata("k")->array()->items.size() == 1);
  }
}

TEST_CASE("rule: a BOOL is 0 or 1", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 1).str("b").u32(7);
  const auto at = g.size();
  g.u8(2);
  expect_rejected("bool", g, at, {"BOOL value 2", "key 'b'", "neither 0 nor 1"});
}

TEST_CASE("rule: arrays fit in the file and nest at most 16 deep", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 1).str("arr").u32(9).u32(4);
  const auto at = g.size();
  g.u64(1ull << 61).zeros(16);
  expect_rejected("array_absurd", g, at, {"key 'arr'", "2305843009213693952 UINT32", "cannot fit in the 16 remaining"});
  gguf_bytes s;  // strings take at least 8 bytes each
  s.header(0, 1).str("arr").u32(9).u32(8);
  const auto sat = s.size();
  s.u64(3).zeros(16);
  expect_rejected("array_strings_absurd", s, sat, {"3 STRING", "at least 8"});

  // 16 levels (an array of arrays ... of UINT8) are read; 17 are refused at the 17th element type.
  const auto nest = [](int levels) {
    gguf_bytes n;
    n.header(0, 1).str("deep").u32(9);
    std::uint64_t last_type = 0;
    for (int l = 1; l < levels; ++l) {
      last_type = n.size();
      n.u32(9).u64(1);
    }
    n.u32(0).u64(1).u8(42);
    return std::pair{n, last_type};
  };
  gguf_file ok(write_file("nest16", nest(16).first));
  const gguf_value* v = ok.find_metadata("deep");
  for (int l = 1; l < 16; ++l) v = &v->array()->items[0];
  CHECK(v->array()->type == gguf_type::u8);
  const auto [deep, at17] = nest(17);
  expect_rejected("nest17", deep, at17, {"key 'deep'", "nest deeper than 16"});
}

TEST_CASE("rule: general.alignment is a UINT32 power of two", "[gguf][rules]") {
  gguf_bytes g;
  g.header(0, 1);
  const auto at = g.size();
  g.str("general.alignment").u32(5).u32(64);  // INT32
  expect_rejected("align_type", g, at, {"'general.alignment'", "must be a UINT32", "found INT32"});
  for (std::uint32_t a : {0u, 48u, 3u}) {
    gguf_bytes b;
    b.header(0, 1).kv_u32("general.alignment", a);
    expect_rejected("align_" + std::to_string(a), b, 24,
                    {"'general.alignment'", "alignment " + std::to_string(a) + " is not a power of two"});
  }
  // A valid alignment changes the padding: offsets padded to 32 are wrong under 64.
  gguf_bytes ok;
  ok.header(2, 1).kv_u32("general.alignment", 64).info("a", {3}, 0, 0).info("b", {3}, 0, 64).pad(64);
  ok.zeros(64).zeros(12);
  gguf_file f(write_file("align_ok", ok));
  CHECK(f.alignment() == 64);
  CHECK(f.at("b").offset == f.data_offset() + 64);
  gguf_bytes bad;
  bad.header(2, 1).kv_u32("general.alignment", 64).info("a", {3}, 0, 0);
  const auto off = bad.size() + 8 + 1 + 4 + 8 + 4;  // b's offset field
  bad.info("b", {3}, 0, 32).pad(64).zeros(64 + 12);
  expect_rejected("align_offsets", bad, off, {"tensor 'b'", "data offset 32 should be 64", "alignment 64"});
}

TEST_CASE("rule: tensor names are unique", "[gguf][rules]") {
  gguf_bytes g;
  g.header(2, 0).info("w", {4}, 0, 0);
  const auto at = g.size();
  g.info("w", {4}, 0, 32).pad(32).zeros(64);
  expect_rejected("dup_tensor", g, at, {"duplicate tensor name 'w'", "first at byte 24"});
}

TEST_CASE("rule: at most 4 dimensions, none negative", "[gguf][rules]") {
  gguf_bytes g;
  g.header(1, 0).str("t");
  const auto at = g.size();
  g.u32(5);
  for (int i = 0; i < 5; ++i) g.i64(1);
  g.u32(0).u64(0).pad(32).zeros(32);
  expect_rejected("n_dims", g, at, {"tensor 't'", "n_dims 5 exceeds GGML_MAX_DIMS (4)"});

  gguf_bytes n;
  n.header(1, 0).str("t").u32(2).i64(4);
  const auto nat = n.size();
  n.i64(-3).u32(0).u64(0).pad(32).zeros(64);
  expect_rejected("negative_extent", n, nat, {"tensor 't'", "ne[1] = -3 is negative"});
}

TEST_CASE("rule: element and byte counts fit in int64_t, counting nonzero extents", "[gguf][rules]") {
  // 2^32 x 2^32 elements
  gguf_bytes g;
  g.header(1, 0);
  const auto at = g.size() + 8 + 1 + 4;  // the extents
  g.info("t", {1ll << 32, 1ll << 32}, 0, 0).zeros(64);
  expect_rejected("elements", g, at, {"tensor 't'", "[4294967296, 4294967296]", "too many elements"});
  // [0, 2^62, 3] (ne innermost first) holds no bytes, but its nonzero extents overflow (as tformer::shape)
  gguf_bytes z;
  z.header(1, 0).info("z", {3, 1ll << 62, 0}, 0, 0).zeros(64);
  expect_rejected("zero_extent_elements", z, at, {"tensor 'z'", "[0, 4611686018427387904, 3]", "overflows INT64_MAX"});
  // 2^61 F32 elements (ne[0] = 0 stores none) fit; their 2^63 bytes do not
  gguf_bytes b;
  b.header(1, 0).info("b", {0, 1ll << 61}, 0, 0).zeros(64);
  expect_rejected("bytes", b, at, {"tensor 'b'", "of F32 overflows INT64_MAX bytes"});
  // At the limit: INT64_MAX one-byte elements with a zero extent is a valid, empty tensor.
  gguf_bytes ok;
  ok.header(1, 0).info("ok", {INT64_MAX, 0}, 24, 0).pad(32);
  gguf_file f(write_file("extent_limit", ok));
  CHECK(f.at("ok").bytes == 0);
  CHECK(f.at("ok").rows() == 0);
  // Empty tensors with huge extents load at once (found by fuzzing: a loop over 2^56 empty rows).
  gguf_bytes e;
  e.header(2, 0).info("e", {0, 1ll << 56}, 8, 0).info("f", {0, 1ll << 56}, 0, 0).pad(32);
  gguf_file ef(write_file("empty_rows", e));
  CHECK(ef.load_float("e").numel() == 0);
  quant::matrix<quant::f32> m;
  ef.read("e", m);  // Q8_0 -> f32: converts nothing
  CHECK(m.rows() == (1ll << 56));
  quant::matrix<quant::q8_0> mq;
  ef.read("f", mq);
  CHECK(mq.size_bytes() == 0);
}

TEST_CASE("rule: known ggml types only, and ne[0] a multiple of the block size", "[gguf][rules]") {
  const auto with_type = [](std::uint32_t type, std::int64_t ne0, std::uint64_t& type_at) {
    gguf_bytes g;
    g.header(1, 0).str("t").u32(1).i64(ne0);
    type_at = g.size();
    g.u32(type).u64(0).pad(32).zeros(512);
    return g;
  };
  std::uint64_t at = 0;
  auto g = with_type(42, 32, at);
  expect_rejected("type_unknown", g, at, {"tensor 't'", "unknown ggml type 42"});
  g = with_type(4, 32, at);
  expect_rejected("type_removed_4", g, at, {"tensor 't'", "ggml type 4 (Q4_2) has been removed"});
  g = with_type(5, 32, at);
  expect_rejected("type_removed_5", g, at, {"ggml type 5 (Q4_3) has been removed"});
  g = with_type(31, 32, at);
  expect_rejected("type_removed_31", g, at, {"Q4_0_4_4"});
  g = with_type(0xFFFFFFFF, 32, at);
  expect_rejected("type_huge", g, at, {"unknown ggml type 4294967295"});
  g = with_type(8, 33, at);
  expect_rejected("block_size", g, 24 + 8 + 1 + 4, {"tensor 't'", "ne[0] = 33 is not a multiple of Q8_0's block size 32"});
  g = with_type(12, 32, at);  // Q4_K blocks of 256
  expect_rejected("block_size_k", g, 24 + 8 + 1 + 4, {"Q4_K's block size 256"});
  // A rank-0 tensor of a block type has one element: not a whole block.
  gguf_bytes s;
  s.header(1, 0).info("s", {}, 8, 0).pad(32).zeros(64);
  expect_rejected("block_scalar", s, 24 + 8 + 1 + 4, {"tensor 's'", "ne[0] = 1"});
  // Every other type in the table is accepted (one block, zero bytes of data are fine to read);
  // for each, a row that is not whole blocks and data one byte short of the blocks are refused.
  for (std::uint32_t id = 0; id < std::size(io::ggml_types); ++id) {
    const auto* t = io::find_ggml_type(id);
    if (!t) continue;
    const auto block_bytes = static_cast<std::uint64_t>(t->block_bytes);
    gguf_bytes ok;
    ok.header(1, 0).info("t", {t->block_size}, id, 0).pad(32).zeros(block_bytes);
    INFO(t->name);
    gguf_file f(write_file("each_ggml_type", ok));
    CHECK(f.at("t").type_name == t->name);
    CHECK(f.at("t").bytes == block_bytes);
    if (t->block_size > 1) {
      gguf_bytes partial;
      partial.header(1, 0).info("t", {t->block_size + 1}, id, 0).pad(32).zeros(2 * block_bytes);
      expect_rejected("partial_block", partial, 24 + 8 + 1 + 4,
                      {"tensor 't'", "ne[0] = " + std::to_string(t->block_size + 1) + " is not a multiple of " + std::string(t->name) +
                                         "'s block size " + std::to_string(t->block_size)});
    }
    gguf_bytes short_data;
    short_data.header(1, 0).info("t", {2 * t->block_size}, id, 0).pad(32);
    const auto data_at = short_data.size();
    short_data.zeros(2 * block_bytes - 1);
    expect_rejected("short_data", short_data, data_at,
                    {"tensor 't'", std::to_string(2 * block_bytes) + " bytes of data", "run past the end"});
  }
}

TEST_CASE("rule: offsets are the running padded sum", "[gguf][rules]") {
  gguf_bytes first;
  first.header(1, 0);
  const auto off0 = first.size() + 8 + 1 + 4 + 8 + 4;
  first.info("a", {3}, 0, 32).pad(32).zeros(64);
  expect_rejected("offset_first", first, off0, {"tensor 'a'", "data offset 32 should be 0"});

  gguf_bytes g;
  g.header(2, 0).info("a", {3}, 0, 0);
  const auto off1 = g.size() + 8 + 1 + 4 + 8 + 4;
  g.info("b", {3}, 0, 12).pad(32).zeros(64);  // packed, not padded
  expect_rejected("offset_unpadded", g, off1, {"tensor 'b'", "data offset 12 should be 32", "alignment 32"});

  gguf_bytes gap;
  gap.header(2, 0).info("a", {3}, 0, 0).info("b", {3}, 0, 64).pad(32).zeros(96);
  expect_rejected("offset_gap", gap, off1, {"tensor 'b'", "data offset 64 should be 32"});
}

TEST_CASE("rule: tensor data stays inside the file", "[gguf][rules]") {
  const auto full = valid_file();
  const auto cut = full.truncated(full.size() - 29);  // one byte of b's data missing
  const auto data = full.size() - 128;                  // data section: a (32 padded), b (68, padded to 96)
  expect_rejected("data_past_end", cut, data + 32, {"tensor 'b'", "68 bytes of data", "run past the end of the file"});
  gguf_bytes none;  // the data section itself is missing
  none.header(1, 0).info("a", {3}, 0, 0);
  expect_rejected("data_missing", none, none.size(), {"tensor 'a'", "run past the end"});
}
