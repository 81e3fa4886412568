// CTranslate2 model.bin: files written by CTranslate2's own converter and writer
// (tools/make_whisper_fixtures.py: a tiny random Whisper, float16 and int8) read back; int8
// weights dequantized with their scales; and every rule of the format enforced with an io_error
// naming the file, the byte offset and the variable or alias, each on bytes built here.
#include <tformer/io/ctranslate2.hpp>

#include <tformer/nn/linear.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace fs = std::filesystem;
using namespace tformer;
using io::ct2_dtype;
using io::ctranslate2_file;

namespace {

const std::string data_dir = TFORMER_TEST_DATA_DIR;

// Little-endian model.bin bytes, built field by field; size() before a field is its offset.
struct ct2_bytes {
  std::vector<std::uint8_t> b;
  std::uint64_t size() const { return b.size(); }
  ct2_bytes& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xFF));
    return *this;
  }
  ct2_bytes& u8(std::uint8_t v) { return le(v, 1); }
  ct2_bytes& u16(std::uint16_t v) { return le(v, 2); }
  ct2_bytes& u32(std::uint32_t v) { return le(v, 4); }
  ct2_bytes& str(const std::string& s) {  // length with the NUL, bytes, NUL
    u16(static_cast<std::uint16_t>(s.size() + 1));
    b.insert(b.end(), s.begin(), s.end());
    return u8(0);
  }
  ct2_bytes& f32(float v) { return u32(std::bit_cast<std::uint32_t>(v)); }
  // A version-6 variable record of float32 values.
  ct2_bytes& var(const std::string& name, const std::vector<std::uint32_t>& dims, const std::vector<float>& values) {
    str(name).u8(static_cast<std::uint8_t>(dims.size()));
    for (auto d : dims) u32(d);
    u8(0).u32(static_cast<std::uint32_t>(4 * values.size()));
    for (float v : values) f32(v);
    return *this;
  }
};

// A valid version-6 file: two variables and one alias; offsets of interesting fields.
struct sample {
  ct2_bytes f;
  std::uint64_t second_record = 0, second_rank = 0, second_dtype = 0, second_bytes = 0, alias_count = 0, alias = 0;
  sample() {
    f.u32(6).str("TestSpec").u32(2).u32(2);
    f.var("a/weight", {2, 3}, {1, 2, 3, 4, 5, 6});
    second_record = f.size();
    f.str("a/bias");
    second_rank = f.size();
    f.u8(1).u32(2);
    second_dtype = f.size();
    f.u8(4);
    second_bytes = f.size();
    f.u32(4).u16(0x3C00).u16(0xC000);  // float16 1, -2
    alias_count = f.size();
    f.u32(1);
    alias = f.size();
    f.str("b/weight").str("a/weight");
  }
};

fs::path write_file(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const fs::path p = fs::temp_directory_path() / ("tformer_test_ct2_" + name + ".bin");
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// Opening the file of these bytes throws an io_error naming the file, "at byte <at>" and every
// word of `words`.
void require_error(const std::string& name, const std::vector<std::uint8_t>& bytes, std::uint64_t at,
                   const std::vector<std::string>& words) {
  const fs::path p = write_file(name, bytes);
  try {
    ctranslate2_file f(p);
    FAIL("no error for case '" << name << "'");
  } catch (const io_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("at byte " + std::to_string(at) + ":") != std::string::npos);
    for (const auto& w : words) CHECK(msg.find(w) != std::string::npos);
  }
  fs::remove(p);
}

// Models of one linear (f32), and of one linear and an f16 matrix [1, 2].
struct one {
  nn::linear<quant::f32> l{3, 2, false};
  template <class V>
  void visit(V&& v, const std::string&) {
    l.visit(v, "l.");
  }
};
struct two {
  nn::linear<quant::f32> l{3, 2, false};
  quant::matrix<quant::f16> h{1, 2};
  template <class V>
  void visit(V&& v, const std::string&) {
    l.visit(v, "l.");
    v("h", h);
  }
};

}  // namespace

TEST_CASE("ctranslate2: a file built field by field reads back") {
  sample s;
  const auto p = write_file("sample", s.f.b);
  ctranslate2_file f(p);
  CHECK(f.version() == 6);
  CHECK(f.spec_name() == "TestSpec");
  CHECK(f.revision() == 2);
  REQUIRE(f.variables().size() == 2);
  CHECK(f.variables()[1].record == s.second_record);
  CHECK(f.variables()[1].dtype == ct2_dtype::f16);
  const auto w = f.load_float("a/weight");
  CHECK(w.shape() == shape{2, 3});
  CHECK(w(1, 2) == 6.0f);
  const auto b = f.load_float("a/bias");
  CHECK(b(0) == 1.0f);
  CHECK(b(1) == -2.0f);
  CHECK(f.find("b/weight") == f.find("a/weight"));  // the alias
  CHECK(f.find("nothing") == nullptr);
  io::ctranslate2_source src(f);
  CHECK(src.tensor_names() == std::vector<std::string>{"a/weight", "a/bias", "b/weight"});
  CHECK(src.find_tensor("a/bias")->format == "f16");

  // A model loads through a name map; the f16 variable's bytes go to an f16 parameter as they are.
  two m;
  io::name_map map;
  map.add("l.weight", "b/weight").add("h", "a/bias");  // [2] into [1, 2]: a shape mismatch
  CHECK_THROWS_AS(io::load_ctranslate2(m, f, map), io_error);
  io::name_map ok;
  ok.add("l.weight", "b/weight").ignore("a/weight").ignore("a/bias");
  one m1;
  CHECK(io::load_ctranslate2(m1, f, ok) == 1);
  CHECK(m1.l.weight.to_float()(1, 0) == 4.0f);
  fs::remove(p);
}

TEST_CASE("ctranslate2: CTranslate2's own Whisper files (float16 and int8) read back") {
  ctranslate2_file f16(data_dir + "/whisper_tiny.ct2.bin");
  ctranslate2_file i8(data_dir + "/whisper_tiny_int8.ct2.bin");
  for (const auto* f : {&f16, &i8}) {
    CHECK(f->version() == 6);
    CHECK(f->spec_name() == "WhisperSpec");
    CHECK(f->revision() == 3);
    CHECK(f->scalar_int("encoder/num_heads") == 4);
    CHECK(f->scalar_int("decoder/pre_norm") == 1);
    REQUIRE(f->aliases().size() == 1);
    CHECK(f->aliases()[0].first == "decoder/projection/weight");
    CHECK(f->at("encoder/conv1/weight").shape == std::vector<std::int64_t>{32, 80, 3});
  }
  CHECK(f16.at("encoder/layer_0/self_attention/linear_0/weight").dtype == ct2_dtype::f16);
  CHECK(i8.at("encoder/layer_0/self_attention/linear_0/weight").dtype == ct2_dtype::i8);
  CHECK(i8.at("encoder/layer_0/self_attention/linear_0/weight_scale").dtype == ct2_dtype::f32);

  // int8 weights: q / scale, within half a step (max |row| / 127 / 2) of the float16 weights
  for (const char* name : {"encoder/layer_0/self_attention/linear_0/weight", "decoder/embeddings/weight",
                           "encoder/conv1/weight", "decoder/layer_1/ffn/linear_1/weight"}) {
    INFO(name);
    const auto a = f16.load_float(name), q = i8.load_float(name);
    REQUIRE(a.shape() == q.shape());
    const std::int64_t rows = a.dim(0), per = a.numel() / rows;
    for (std::int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (std::int64_t j = 0; j < per; ++j) amax = std::max(amax, std::fabs(a.data()[r * per + j]));
      for (std::int64_t j = 0; j < per; ++j)
        REQUIRE(std::fabs(a.data()[r * per + j] - q.data()[r * per + j]) <= amax / 127.0f * 0.5f + 2e-3f * amax);
    }
  }
  // the scales are part of their weights, not tensors of their own
  const auto names = io::ctranslate2_source(i8).tensor_names();
  CHECK(std::find(names.begin(), names.end(), "encoder/conv1/weight_scale") == names.end());
  CHECK(std::find(names.begin(), names.end(), "encoder/conv1/weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "decoder/projection/weight") != names.end());
}

TEST_CASE("ctranslate2: every truncation is an io_error naming the file and the offset") {
  sample s;
  const auto& full = s.f.b;
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::span<const std::byte> prefix(reinterpret_cast<const std::byte*>(full.data()), n);
    try {
      (void)io::detail::parse_ctranslate2(prefix, "cut.bin");
      FAIL("a prefix of " << n << " bytes was accepted");
    } catch (const io_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("'cut.bin' at byte ") != std::string::npos);
      CHECK(msg.find("truncated") != std::string::npos);
    }
  }
  // the data of the second variable cut: the message names it and where its data starts
  std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(s.second_bytes + 4 + 2));
  require_error("cut_data", cut, s.second_bytes + 4, {"truncated", "'a/bias'", "needs 4 bytes but 2 remain"});
  // the real fixture cut in the middle of a weight
  std::ifstream in(data_dir + "/whisper_tiny.ct2.bin", std::ios::binary);
  std::vector<std::uint8_t> real((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  real.resize(real.size() / 2);
  const fs::path p = write_file("real_cut", real);
  try {
    ctranslate2_file f(p);
    FAIL("a truncated model.bin was accepted");
  } catch (const io_error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
    CHECK(msg.find("of variable '") != std::string::npos);
  }
  fs::remove(p);
}

TEST_CASE("ctranslate2: malformed files are io_errors naming the file, the offset and the variable") {
  {
    sample s;
    s.f.b[0] = 7;
    require_error("version7", s.f.b, 0, {"unsupported binary version 7"});
    s.f.b[0] = 0;
    require_error("version0", s.f.b, 0, {"unsupported binary version 0"});
    s.f.b[0] = 0, s.f.b[3] = 6;
    require_error("big_endian", s.f.b, 0, {"big-endian"});
  }
  {
    sample s;
    s.f.b[s.second_dtype] = 9;
    require_error("dtype", s.f.b, s.second_dtype, {"'a/bias'", "unknown dtype id 9"});
  }
  {
    sample s;
    s.f.b[s.second_bytes] = 6;
    require_error("size", s.f.b, s.second_bytes, {"'a/bias'", "declares 6 bytes", "needs 4"});
  }
  {
    sample s;
    s.f.b[s.second_rank] = 5;
    require_error("rank", s.f.b, s.second_rank, {"'a/bias'", "rank 5"});
  }
  {
    sample s;  // the name's NUL replaced
    s.f.b[s.second_record + 2 + 6] = 'x';
    require_error("nul", s.f.b, s.second_record + 2 + 6, {"NUL", "variable 1"});
  }
  {
    sample s;  // a zero string length
    s.f.b[s.second_record] = 0;
    require_error("empty_string", s.f.b, s.second_record, {"length 0", "variable 1"});
  }
  {
    ct2_bytes f;
    f.u32(6).str("S").u32(1).u32(2).var("x", {1}, {1});
    const auto second = f.size();
    f.var("x", {1}, {2}).u32(0);
    require_error("duplicate", f.b, second, {"duplicate variable name 'x'"});
  }
  {
    sample s;
    s.f.b[s.alias + 2 + 9 + 2] = 'z';  // the target "a/weight" -> "z/weight"
    require_error("alias_target", s.f.b, s.alias, {"alias 'b/weight'", "'z/weight'"});
  }
  {
    ct2_bytes f;
    f.u32(6).str("S").u32(1).u32(1).var("x", {1}, {1}).u32(1);
    const auto alias = f.size();
    f.str("x").str("x");
    require_error("alias_repeat", f.b, alias, {"alias 'x' repeats"});
  }
  {
    sample s;
    s.f.u8(0);
    require_error("trailing", s.f.b, s.f.size() - 1, {"1 bytes follow the aliases"});
  }
  {
    ct2_bytes f;
    f.u32(6).str("S").u32(1).u32(0xFFFFFFFF);
    require_error("count", f.b, 12, {"variable count 4294967295 cannot fit"});
  }
  {
    ct2_bytes f;
    f.u32(6).str("S").u32(1).u32(0).u32(0x10000000);
    require_error("alias_count", f.b, 16, {"alias count 268435456 cannot fit"});
  }
  {
    // a version-3 file: item size instead of dtype, element count instead of bytes
    ct2_bytes f;
    f.u32(3).str("S").u32(1).u32(1).str("x").u8(1).u32(2);
    const auto item = f.size();
    f.u8(4).u32(2).f32(1).f32(2).u32(0);
    const auto p = write_file("v3", f.b);
    ctranslate2_file ok(p);
    CHECK(ok.load_float("x")(1) == 2.0f);
    fs::remove(p);
    f.b[item] = 3;
    require_error("item_size", f.b, item, {"item size 3"});
  }
  // an int8 weight whose scale has the wrong count: named when read
  {
    ct2_bytes f;
    f.u32(6).str("S").u32(1).u32(2);
    f.str("w").u8(2).u32(2).u32(2).u8(1).u32(4).u8(1).u8(2).u8(3).u8(4);
    f.var("w_scale", {3}, {1, 2, 3}).u32(0);
    const auto p = write_file("scale", f.b);
    ctranslate2_file bad(p);
    try {
      (void)bad.load_float("w");
      FAIL("a scale of the wrong size was accepted");
    } catch (const io_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("'w_scale'") != std::string::npos);
      CHECK(msg.find(p.string()) != std::string::npos);
    }
    fs::remove(p);
  }
}
