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

// ---- options against Hugging Face generate (tools/make_generate_fixtures.py, transformers 5.24) ----
// One input at a time in HF, one batch here; 8 new tokens; the end id of the fixtures above.
// Tokens must be equal; beam scores within 1e-4 (as above: sums of 8 float32 log-probabilities).

namespace {

struct options_reference : reference {
  explicit options_reference(const char* model) : reference((std::string(model) + "_generate_options").c_str()) {
    eos = data.load<std::int32_t>("eos_id")(0);
    inputs = rows("inputs");
    const auto strings = nlohmann::json::parse(data.metadata().at("token_strings"));
    for (const auto& s : strings) token_strings.push_back(s.get<std::string>());
    for (const auto& s : nlohmann::json::parse(data.metadata().at("stop_strings"))) stop_strings.push_back(s.get<std::string>());
  }
  std::vector<std::int32_t> ids(const char* n) const {
    const auto t = data.load<std::int32_t>(n);
    return std::vector<std::int32_t>(t.data(), t.data() + t.numel());
  }
  generate::options base() const {
    generate::options o;
    o.max_new_tokens = 8;
    o.eos_ids = {eos};
    return o;
  }
  // The fixture's detokenizer: the token strings concatenated (HF: a WordLevel tokenizer with a Fuse decoder).
  generate::detokenizer detokenize() const {
    return [strings = token_strings](std::span<const std::int32_t> t) {
      std::string text;
      for (const std::int32_t id : t) text += strings.at(static_cast<std::size_t>(id));
      return text;
    };
  }
  std::int32_t eos = 0;
  std::vector<std::vector<std::int32_t>> inputs;
  std::vector<std::string> token_strings, stop_strings;
};

template <class Model, class Inputs>
void check_greedy(const Model& model, const Inputs& inputs, const options_reference& ref, const generate::options& o,
                  const char* tag) {
  const auto got = generate::run(model, inputs, o);
  const auto want = ref.rows(tag);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(tag << " input " << i);
    CHECK(got[i][0].tokens == want[i]);
  }
}

template <class Model>
void check_beams(const Model& model, const options_reference& ref, generate::options o, const char* tag) {
  o.num_beams = 4;
  o.num_return_sequences = 4;
  const auto got = generate::run(model, ref.inputs, o);
  const auto all = ref.rows((std::string(tag) + "_all").c_str());
  const auto scores = ref.data.load<float>(std::string(tag) + "_scores");
  for (std::size_t i = 0; i < ref.inputs.size(); ++i) {
    INFO(tag << " input " << i);
    REQUIRE(got[i].size() == 4);
    for (std::size_t h = 0; h < 4; ++h) {
      CHECK(got[i][h].tokens == all[i * 4 + h]);
      CHECK(std::fabs(got[i][h].score - scores(static_cast<std::int64_t>(i), static_cast<std::int64_t>(h))) <= 1e-4f);
    }
  }
}

// Greedy and beam search with every option, HF's values.
template <class Model>
void check_options(const Model& model, const char* name) {
  const options_reference ref(name);
  auto o = ref.base();
  o.min_new_tokens = 5;
  check_greedy(model, ref.inputs, ref, o, "min_new");
  o = ref.base();
  o.no_repeat_ngram_size = 2;
  check_greedy(model, ref.inputs, ref, o, "ngram2");
  check_beams(model, ref, o, "ngram2_beam4");
  o.no_repeat_ngram_size = 1;
  check_greedy(model, ref.inputs, ref, o, "ngram1");
  o = ref.base();
  o.suppress_tokens = ref.ids("suppress_tokens");
  o.begin_suppress_tokens = ref.ids("begin_suppress_tokens");
  check_greedy(model, ref.inputs, ref, o, "suppress");
  o = ref.base();
  o.no_repeat_ngram_size = 2;
  o.min_new_tokens = 4;
  o.suppress_tokens = ref.ids("common");
  o.begin_suppress_tokens = {ref.eos};
  check_greedy(model, ref.inputs, ref, o, "combined");
  check_beams(model, ref, o, "combined_beam4");
  o = ref.base();
  o.stop_strings = ref.stop_strings;
  o.detokenize = ref.detokenize();
  check_greedy(model, ref.inputs, ref, o, "stop");
  check_beams(model, ref, o, "stop_beam4");
}

}  // namespace

TEST_CASE("GPT-2 generation options equal Hugging Face generate", "[generate][parity][options]") {
  check_options(test::load_gpt2(), "hf_gpt2");
}

TEST_CASE("T5 generation options equal Hugging Face generate", "[generate][parity][options]") {
  check_options(test::load_t5(), "hf_t5");
}

TEST_CASE("T5 decodes from decoder prompts like HF decoder_input_ids", "[generate][parity][prompt]") {
  const auto t5 = test::load_t5();
  const options_reference ref("hf_t5");
  auto o = ref.base();
  o.decoder_prompts = ref.rows("decoder_prompts");  // {0, 12, 7}; {12, 7, 30} gets the start id 0 in front
  check_greedy(t5, ref.inputs, ref, o, "prompt");
  o.no_repeat_ngram_size = 2;
  o.min_new_tokens = 4;
  o.suppress_tokens = ref.ids("common");
  o.begin_suppress_tokens = {ref.eos};
  check_greedy(t5, ref.inputs, ref, o, "prompt_combined");
  check_beams(t5, ref, o, "prompt_beam4");

  // one prompt for every input equals that prompt given per input
  o = ref.base();
  o.decoder_prompts = {{12, 7}};
  const auto shared = generate::run(t5, ref.inputs, o);
  o.decoder_prompts.assign(ref.inputs.size(), {0, 12, 7});
  const auto each = generate::run(t5, ref.inputs, o);
  for (std::size_t i = 0; i < ref.inputs.size(); ++i) CHECK(shared[i][0].tokens == each[i][0].tokens);

  o.decoder_prompts = {{1}, {2}};  // neither one nor one per input
  CHECK(test::thrown_message<value_error>([&] { generate::run(t5, ref.inputs, o); }).find("decoder_prompts") !=
        std::string::npos);
  o.decoder_prompts = {{1}};
  CHECK(test::thrown_message<value_error>([&] { generate::run(test::load_gpt2(), ref.inputs, o); }).find("decoder_prompts") !=
        std::string::npos);
}

TEST_CASE("T5 generates from embeddings and from the encoder's output like HF inputs_embeds / encoder_outputs",
          "[generate][parity][encoded]") {
  const auto t5 = test::load_t5();
  const options_reference ref("hf_t5");
  const auto embeds = ref.data.load<float>("embeds");
  const auto lengths = ref.data.load<std::int32_t>("embeds_lengths");
  const auto want_hidden = ref.data.load<float>("embeds_encoder_hidden");
  const auto want = ref.rows("embeds_greedy");
  const auto o = ref.base();

  // the encoder on embeddings in place of ids
  const models::encoded source = t5.encode(models::encoder_input{.embeds = embeds, .lengths = lengths});
  const double err = test::max_abs_diff(source.hidden, want_hidden, lengths);
  INFO("encoder hidden max abs error " << err);
  CHECK(err <= 1e-4);  // RMS-normed outputs of order 1, as the model tests

  const auto from_embeds = generate::run(t5, source, o);
  // the encoder's output computed elsewhere (here: HF's), as hidden states or as encoded sources
  const auto from_hidden = generate::run(t5, tensor<float>(want_hidden), lengths, o);
  const auto from_encoded = generate::run(t5, t5.from_encoder_output(tensor<float>(want_hidden), lengths), o);
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("input " << i);
    CHECK(from_embeds[i][0].tokens == want[i]);
    CHECK(from_hidden[i][0].tokens == want[i]);
    CHECK(from_encoded[i][0].tokens == want[i]);
  }

  // token ids through encode() and through run() on ids give the same tokens
  tensor<std::int32_t> ids, id_lengths;
  const auto inputs = ref.inputs;
  generate::detail::pack(inputs, ids, id_lengths, "source");
  const auto a = generate::run(t5, inputs, o);
  const auto b = generate::run(t5, t5.encode(ids, id_lengths), o);
  for (std::size_t i = 0; i < inputs.size(); ++i) CHECK(a[i][0].tokens == b[i][0].tokens);

  CHECK_THROWS_AS(t5.from_encoder_output(tensor<float>(shape{1, 3, 5})), shape_error);
}

TEST_CASE("bad generation options throw value_error naming the field", "[generate][errors]") {
  const auto gpt2 = test::load_gpt2();
  const auto field = [&](const generate::options& o) {
    return test::thrown_message<value_error>([&] { generate::run(gpt2, {{1}}, o); });
  };
  generate::options o;
  o.min_new_tokens = -1;
  CHECK(field(o).find("min_new_tokens") != std::string::npos);
  o = {};
  o.no_repeat_ngram_size = -2;
  CHECK(field(o).find("no_repeat_ngram_size") != std::string::npos);
  o = {};
  o.suppress_tokens = {3, -1};
  CHECK(field(o).find("suppress_tokens") != std::string::npos);
  o = {};
  o.begin_suppress_tokens = {-5};
  CHECK(field(o).find("begin_suppress_tokens") != std::string::npos);
  o = {};
  o.stop_strings = {"ab"};
  CHECK(field(o).find("detokenize") != std::string::npos);
  o.detokenize = [](std::span<const std::int32_t>) { return std::string(); };
  o.stop_strings = {"ab", ""};
  CHECK(field(o).find("stop_strings[1]") != std::string::npos);
}
