// Decoding against Hugging Face generate() (transformers 5.23, tiny GPT-2 and T5 from the model
// fixtures; tools/make_fixtures.py): greedy and beam search with 4 beams at length penalty 1.0
// and 0.6, all inputs decoded as one batch; batched equals one at a time; seeded sampling is
// reproducible for any thread count; streaming; bad settings.
#include <tformer/generate/search.hpp>
#include <tformer/io/name_maps.hpp>

#include "catch.hpp"
#include "fixture.hpp"
#include "hf_models.hpp"
#include "support.hpp"

using namespace tformer;

namespace {

// Rows of a -1-padded [N, L] int tensor as token vectors.
std::vector<std::vector<std::int32_t>> rows_of(const tensor<std::int32_t>& t) {
  std::vector<std::vector<std::int32_t>> out;
  for (std::int64_t r = 0; r < t.dim(0); ++r) {
    out.emplace_back();
    for (std::int64_t c = 0; c < t.dim(1) && t(r, c) >= 0; ++c) out.back().push_back(t(r, c));
  }
  return out;
}

struct reference {
  explicit reference(const char* name) : data(std::string(TFORMER_TEST_DATA_DIR) + "/" + name + ".case.safetensors") {}
  std::vector<std::vector<std::int32_t>> rows(const char* n) const { return rows_of(data.load<std::int32_t>(n)); }
  io::safetensors_file data;
};

template <class Model>
void check_against_hf(const Model& model, const char* fixture) {
  reference ref(fixture);
  const auto inputs = ref.rows("inputs");
  generate::options o;
  o.max_new_tokens = 8;
  o.eos_ids = {ref.data.load<std::int32_t>("eos_id")(0)};
  o.decoder_start_id = 0;
  const auto greedy = generate::run(model, inputs, o);
  const auto want_greedy = ref.rows("greedy");
  for (std::size_t i = 0; i < inputs.size(); ++i) CHECK(greedy[i][0].tokens == want_greedy[i]);

  for (auto [lp, tag] : {std::pair{1.0f, "beam4_lp10"}, std::pair{0.6f, "beam4_lp06"}}) {
    o.num_beams = 4;
    o.length_penalty = lp;
    o.num_return_sequences = 4;
    const auto beams = generate::run(model, inputs, o);
    const auto all = ref.rows((std::string(tag) + "_all").c_str());
    const auto scores = ref.data.load<float>(std::string(tag) + "_scores");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      INFO(fixture << " " << tag << " input " << i);
      REQUIRE(beams[i].size() == 4);
      for (std::size_t h = 0; h < 4; ++h) {
        CHECK(beams[i][h].tokens == all[i * 4 + h]);
        CHECK(std::fabs(beams[i][h].score - scores(static_cast<std::int64_t>(i), static_cast<std::int64_t>(h))) <= 1e-4f);
      }
    }
  }
}

}  // namespace

TEST_CASE("GPT-2 greedy and beam search equal Hugging Face generate", "[generate][parity]") {
  check_against_hf(test::load_gpt2(), "hf_gpt2_generate");
}

TEST_CASE("T5 greedy and beam search equal Hugging Face generate", "[generate][parity]") {
  check_against_hf(test::load_t5(), "hf_t5_generate");
}

TEST_CASE("a batch decodes exactly like its inputs one at a time", "[generate][batch]") {
  const auto gpt2 = test::load_gpt2();
  const auto t5 = test::load_t5();
  const std::vector<std::vector<std::int32_t>> inputs = {{5, 17, 33}, {60, 2, 9, 44, 7, 8}, {11}, {12, 13, 14, 15}};
  for (std::int64_t beams : {1, 3}) {
    generate::options o;
    o.max_new_tokens = 6;
    o.eos_ids = {26, 40};
    o.num_beams = beams;
    const auto batched_lm = generate::run(gpt2, inputs, o);
    const auto batched_s2s = generate::run(t5, inputs, o);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto alone_lm = generate::run(gpt2, {inputs[i]}, o);
      const auto alone_s2s = generate::run(t5, {inputs[i]}, o);
      CHECK(batched_lm[i][0].tokens == alone_lm[0][0].tokens);
      CHECK(batched_s2s[i][0].tokens == alone_s2s[0][0].tokens);
      CHECK(std::fabs(batched_lm[i][0].score - alone_lm[0][0].score) <= 1e-5f);
    }
  }
}

TEST_CASE("seeded sampling gives the same tokens on every run and thread count", "[generate][sampling]") {
  const auto gpt2 = test::load_gpt2();
  test::thread_guard guard;
  const std::vector<std::vector<std::int32_t>> inputs = {{5, 17, 33}, {60, 2}};
  generate::options o;
  o.max_new_tokens = 12;
  o.sample = true;
  o.seed = 1234;
  const auto proc = generate::make_chain(generate::temperature(1.5f), generate::top_k(20), generate::top_p(0.9f));
  set_num_threads(1);
  const auto a = generate::run(gpt2, inputs, o, proc);
  set_num_threads(2);
  const auto b = generate::run(gpt2, inputs, o, proc);
  const auto c = generate::run(gpt2, inputs, o, proc);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    CHECK(a[i][0].tokens == b[i][0].tokens);
    CHECK(a[i][0].tokens == c[i][0].tokens);
  }
  o.seed = 99;  // another seed: another sample (with 12 tokens from ~20 candidates each)
  const auto d = generate::run(gpt2, inputs, o, proc);
  CHECK((d[0][0].tokens != a[0][0].tokens || d[1][0].tokens != a[1][0].tokens));
}

TEST_CASE("a streaming callback sees every token and can stop its sequence", "[generate][stream]") {
  const auto gpt2 = test::load_gpt2();
  generate::options o;
  o.max_new_tokens = 10;
  std::vector<std::vector<std::int32_t>> seen(2);
  const auto out = generate::run(gpt2, {{5, 17}, {60}}, o, generate::no_processing{}, [&](std::int64_t i, std::int32_t t) {
    seen[static_cast<std::size_t>(i)].push_back(t);
    return !(i == 1 && seen[1].size() == 3);  // stop the second sequence after 3 tokens
  });
  CHECK(out[0][0].tokens == seen[0]);
  CHECK(out[0][0].tokens.size() == 10);
  CHECK(out[1][0].tokens.size() == 3);
  CHECK(out[1][0].tokens == seen[1]);
}

TEST_CASE("bad generation settings and inputs throw value_error", "[generate][errors]") {
  const auto gpt2 = test::load_gpt2();
  generate::options o;
  o.num_beams = 0;
  CHECK(test::thrown_message<value_error>([&] { generate::run(gpt2, {{1}}, o); }).find("beam width") != std::string::npos);
  o = {};
  CHECK_THROWS_AS(generate::run(gpt2, {{1}, {}}, o), value_error);  // empty prompt
  o.max_new_tokens = 0;
  CHECK_THROWS_AS(generate::run(gpt2, {{1}}, o), value_error);
  o = {};
  CHECK_THROWS_AS(generate::run(gpt2, {{1, 500}}, o), value_error);  // id outside the vocabulary
  o.max_new_tokens = 40;  // 40 learned positions: 5 + 40 do not fit
  CHECK_THROWS_AS(generate::run(gpt2, {{1, 2, 3, 4, 5}}, o), value_error);
}
