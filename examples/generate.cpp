// tformer-generate: text generation with a decoder-only model: a Hugging Face directory (gpt2,
// llama, mistral, qwen2, with tokenizer.json) or a GGUF file (llama, qwen2 or gpt2 architecture; its own
// vocabulary). The text streams to standard output as it is generated. --chat wraps the prompt in
// the model's chat template (the ChatML family: <|im_start|>role ... <|im_end|>).
//
//   tformer-generate --model SmolLM2-135M-Instruct.Q4_1.gguf --chat "What is the capital of France?"
//   echo "Once upon a time" | tformer-generate --model gpt2-dir --sample --seed 1 --top-p 0.9
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <tformer/generate/search.hpp>
#include <tformer/io/gguf.hpp>
#include <tformer/io/hf_directory.hpp>
#include <tformer/models/gguf_auto.hpp>
#include <tformer/models/hf_auto.hpp>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-generate",
    "usage: tformer-generate --model DIR|FILE.gguf [--max-new-tokens N] [--greedy | --sample [--seed S] "
    "[--temperature T] [--top-k K] [--top-p P]] [--stop TEXT ...] [--chat [--system TEXT]] [--jsonl] [--threads N] "
    "[PROMPT ...]",
    "\n"
    "Continues the prompt: the PROMPT arguments joined by spaces, or else each line of standard input\n"
    "as a prompt of its own. The generated text streams to standard output, one line per prompt.\n"
    "\n"
    "  --model PATH          a Hugging Face decoder directory (with tokenizer.json) or a GGUF file\n"
    "  --max-new-tokens N    tokens to generate at most (default 128)\n"
    "  --greedy              the most likely token each step (the default)\n"
    "  --sample              sample instead, with --seed S (default 0), --temperature T, --top-k K, --top-p P\n"
    "  --stop TEXT           stop once the newest token completes TEXT (kept in the output; repeatable;\n"
    "                        Hugging Face's stop_strings rule: TEXT must end inside that token)\n"
    "  --chat                the prompt is a user message in the model's chat template (ChatML family)\n"
    "  --system TEXT         with --chat: the system message (default: the template's own, if any)\n"
    "  --jsonl               one JSON object per prompt: {\"prompt\", \"text\", \"ids\"}, printed when done\n"
    "  --threads N           number of threads\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Exit status: 0 done, 1 a bad file or model, 2 a bad command line.\n"};

using namespace tformer;

// Every model the program runs: the GGUF dispatch's instantiations (models/gguf_auto.hpp: Llama and
// Qwen2 in F32, Q8_0, or Q4_1 with a Q8_0 table; GPT-2), which include the directory presets'.
using any_model = models::gguf_decoder;

struct loaded {
  any_model model;
  text::tokenizer tok;
  std::vector<std::int32_t> eos;
  std::string chat_template;  // empty: none
};

loaded open_gguf(const std::string& path) {
  const io::gguf_file f(path);
  loaded r{models::open_gguf_decoder(f), text::tokenizer_from_gguf(f), {}, ""};
  if (f.find_metadata("tokenizer.ggml.eos_token_id")) r.eos.push_back(static_cast<std::int32_t>(f.get_int("tokenizer.ggml.eos_token_id")));
  if (f.find_metadata("tokenizer.chat_template")) r.chat_template = f.get_string("tokenizer.chat_template");
  return r;
}

// The end ids of a directory: config.json's and generation_config.json's eos_token_id (a number or a list).
void add_eos(const nlohmann::json& j, std::vector<std::int32_t>& eos) {
  if (!j.is_object() || !j.contains("eos_token_id")) return;
  const auto& v = j.at("eos_token_id");
  if (v.is_number_integer()) eos.push_back(v.get<std::int32_t>());
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_number_integer()) eos.push_back(x.get<std::int32_t>());
}

loaded open_directory(const std::string& path) {
  const io::hf_directory dir(path);
  auto model = std::visit([](auto&& m) -> any_model { return std::move(m); }, models::open_decoder(dir));
  if (!dir.tokenizer_path()) throw std::runtime_error("'" + path + "' has no tokenizer.json");
  loaded r{std::move(model), text::tokenizer::from_file(*dir.tokenizer_path()), {}, ""};
  add_eos(dir.config(), r.eos);
  if (const auto g = dir.directory() / "generation_config.json"; std::filesystem::exists(g)) add_eos(io::read_json_file(g), r.eos);
  if (const auto t = dir.directory() / "tokenizer_config.json"; std::filesystem::exists(t)) {
    const auto j = io::read_json_file(t);
    if (j.is_object() && j.contains("chat_template")) {
      const auto& c = j.at("chat_template");
      if (c.is_string()) r.chat_template = c.get<std::string>();
      if (c.is_array())  // named templates: the "default" one
        for (const auto& x : c)
          if (x.value("name", "") == "default") r.chat_template = x.value("template", "");
    }
  }
  return r;
}

// The system message a ChatML template writes when the conversation has none, or "".
std::string default_system(const std::string& tmpl) {
  for (const char* nl : {"\n", "\\n"}) {
    const std::string start = std::string("<|im_start|>system") + nl;
    const auto b = tmpl.find(start);
    if (b == std::string::npos) continue;
    const auto e = tmpl.find("<|im_end|>", b + start.size());
    const std::string s = tmpl.substr(b + start.size(), e == std::string::npos ? 0 : e - b - start.size());
    if (s.find_first_of("{}'\"+") == std::string::npos) return s;  // literal text, not an expression
  }
  return "";
}

// The prompt of one user message in ChatML, ready for the assistant's answer.
std::string chatml(const std::string& tmpl, const std::optional<std::string>& system, const std::string& user) {
  if (tmpl.empty()) throw std::runtime_error("--chat: the model has no chat template");
  if (tmpl.find("<|im_start|>") == std::string::npos)
    throw std::runtime_error("--chat: the model's chat template is not ChatML (<|im_start|>); only the ChatML family is supported");
  const std::string sys = system ? *system : default_system(tmpl);
  std::string p;
  if (!sys.empty() || system) p += "<|im_start|>system\n" + sys + "<|im_end|>\n";
  return p + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}
}  // namespace

int main(int argc, char** argv) {
  return cli::run(prog, argc, argv, [](cli::args& a) {
    std::string path;
    std::optional<std::string> system;
    bool chat = false, jsonl = false;
    generate::options o;
    o.max_new_tokens = 128;
    std::optional<generate::temperature> temperature;
    std::optional<generate::top_k> top_k;
    std::optional<generate::top_p> top_p;
    std::vector<std::string> words;
    while (a.next()) try {  // a bad value (top_p 1.5) is a bad command line
      if (a.is("--model")) path = a.value();
      else if (a.is("--max-new-tokens")) o.max_new_tokens = a.integer(1);
      else if (a.is("--greedy")) o.sample = false;
      else if (a.is("--sample")) o.sample = true;
      else if (a.is("--seed")) o.seed = static_cast<std::uint64_t>(a.integer(0));
      else if (a.is("--temperature")) temperature.emplace(static_cast<float>(a.number()));
      else if (a.is("--top-k")) top_k.emplace(a.integer(1));
      else if (a.is("--top-p")) top_p.emplace(static_cast<float>(a.number()));
      else if (a.is("--stop")) {
        o.stop_strings.push_back(a.value());
        if (o.stop_strings.back().empty()) throw cli::usage_error("--stop needs a non-empty text");
      }
      else if (a.is("--chat")) chat = true;
      else if (a.is("--system")) system = a.value();
      else if (a.is("--jsonl")) jsonl = true;
      else if (a.is("--threads")) tformer::set_num_threads(static_cast<int>(a.integer(1)));
      else if (a.is_option()) a.unknown();
      else words.push_back(a.arg());
    } catch (const tformer::error& e) {
      throw cli::usage_error(e.what());
    }
    if (path.empty()) throw cli::usage_error("--model is required");
    if (system && !chat) throw cli::usage_error("--system needs --chat");
    if (!o.sample && (temperature || top_k || top_p)) throw cli::usage_error("--temperature, --top-k and --top-p need --sample");

    std::vector<std::string> prompts;
    if (!words.empty()) {
      std::string joined;
      for (const auto& w : words) {
        if (!joined.empty()) joined += ' ';
        joined += w;
      }
      prompts.push_back(joined);
    } else {
      for (auto& line : cli::inputs_or_stdin({}))
        if (!line.empty()) prompts.push_back(line);
      if (prompts.empty()) throw cli::usage_error("no prompt: give it as arguments or on standard input");
    }

    std::error_code ec;
    auto m = std::filesystem::is_directory(path, ec) ? open_directory(path)
             : std::filesystem::exists(path, ec)     ? open_gguf(path)
                                                     : throw std::runtime_error("cannot open '" + path + "'");
    o.eos_ids = m.eos;
    o.detokenize = [&tok = m.tok](std::span<const std::int32_t> ids) { return tok.decode({ids.begin(), ids.end()}); };
    if (chat)  // the end of the assistant's turn ends the answer
      if (const auto end = m.tok.token_to_id("<|im_end|>"); end >= 0) o.eos_ids.push_back(end);
    // the sampling processors the command line asked for, in Hugging Face's order
    auto processors = [&](std::span<const std::int32_t> tokens, std::span<float> logits) {
      if (temperature) (*temperature)(tokens, logits);
      if (top_k) (*top_k)(tokens, logits);
      if (top_p) (*top_p)(tokens, logits);
    };

    for (const auto& prompt : prompts) {
      const auto ids = chat ? m.tok.encode(chatml(m.chat_template, system, prompt), /*add_special_tokens=*/false) : m.tok.encode(prompt);
      text::decode_stream stream(m.tok);
      cli::progress progress("generating");
      std::int64_t count = 0;
      auto on_token = [&](std::int64_t, std::int32_t id) {
        if (jsonl) {
          progress.update(++count, o.max_new_tokens);
        } else {
          std::fputs(stream.step(id).c_str(), stdout);
          std::fflush(stdout);
        }
        return true;
      };
      const auto out = std::visit([&](const auto& model) { return generate::run(model, {ids}, o, processors, on_token); }, m.model);
      const auto& tokens = out.at(0).at(0).tokens;
      progress.done();
      if (jsonl) cli::print_json({{"prompt", prompt}, {"text", m.tok.decode(tokens)}, {"ids", tokens}});
      else std::printf("%s\n", stream.finish().c_str());
    }
    return 0;
  });
}
