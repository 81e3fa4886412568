// tformer-transcribe: speech to text with a Whisper model directory, in CTranslate2's layout
// (model.bin, config.json, vocabulary, tokenizer.json) or transformers' (config.json,
// model.safetensors, tokenizer.json), read by models::load_whisper. Sound files of any rate (WAV,
// FLAC, ... as libsndfile reads them) are resampled to 16 kHz and transcribed 2 n_audio_ctx
// feature frames at a time (30 seconds for Whisper's models), greedily, without timestamps.
//
//   tformer-transcribe --model whisper-tiny.en speech.wav   ->  The quick brown fox ...
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <tformer/audio.hpp>
#include <tformer/models/whisper.hpp>

#include "cli.hpp"

namespace {
const cli::program prog{
    "tformer-transcribe",
    "usage: tformer-transcribe --model DIR [--language CODE] [--max-new-tokens N] [--jsonl] [--threads N] FILE.wav ...",
    "\n"
    "Prints the transcript of each sound file, one line per file.\n"
    "\n"
    "  --model DIR         a Whisper directory: CTranslate2 (model.bin) or transformers (model.safetensors)\n"
    "  --language CODE     multilingual models: the spoken language (default en)\n"
    "  --max-new-tokens N  tokens per 30 s window at most (default 224)\n"
    "  --jsonl             one JSON object per file: {\"file\", \"text\", \"ids\"}\n"
    "  --threads N         number of threads\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "A file that cannot be read gets an empty output line and \"tformer-transcribe: FILE: why\" on\n"
    "standard error; the other files are still transcribed.\n"
    "Exit status: 0 done, 1 a bad model or file, 2 a bad command line.\n"};

using namespace tformer;
using whisper = models::whisper<models::whisper_spec<>>;

// Greedy decoding of one window with generate::run: the forced prefix as the decoder's prompt
// (it starts with <|startoftranscript|>, the decoder start), the model's suppressed tokens masked
// at every step and its begin-suppressed ones at the first, until <|endoftext|>. Returns the
// tokens after the prefix, without <|endoftext|>.
std::vector<std::int32_t> greedy(const whisper& m, models::encoded e, const std::vector<std::int32_t>& prefix,
                                 std::int64_t max_new) {
  const auto& s = m.settings;
  generate::options o;
  o.max_new_tokens = max_new;
  o.decoder_start_id = prefix.front();
  o.decoder_prompts = {prefix};
  o.suppress_tokens = s.suppress_ids;
  o.begin_suppress_tokens = s.suppress_ids_begin;
  o.eos_ids = {s.eot};
  auto tokens = generate::run(m, std::move(e), o)[0][0].tokens;
  if (!tokens.empty() && tokens.back() == s.eot) tokens.pop_back();
  return tokens;
}
}  // namespace

int main(int argc, char** argv) {
  return cli::run(prog, argc, argv, [](cli::args& a) {
    std::string dir, language = "en";
    bool jsonl = false;
    std::int64_t max_new = 224;
    std::vector<std::string> files;
    while (a.next()) {
      if (a.is("--model")) dir = a.value();
      else if (a.is("--language")) language = a.value();
      else if (a.is("--max-new-tokens")) max_new = a.integer(1);
      else if (a.is("--jsonl")) jsonl = true;
      else if (a.is("--threads")) tformer::set_num_threads(static_cast<int>(a.integer(1)));
      else if (a.is_option()) a.unknown();
      else files.push_back(a.arg());
    }
    if (dir.empty()) throw cli::usage_error("--model is required");
    if (files.empty()) throw cli::usage_error("no sound file given");

    const auto tok = cli::open_tokenizer(dir);
    const auto model = models::load_whisper<models::whisper_spec<>>(dir);
    const auto& s = model.settings;
    std::optional<std::int32_t> lang;
    if (s.multilingual()) {
      lang = tok.token_to_id("<|" + language + "|>");
      if (*lang < 0) throw cli::usage_error("--language " + language + ": the model has no token <|" + language + "|>");
    }
    const auto prefix = s.prefix(lang);
    max_new = std::min<std::int64_t>(max_new, model.config.max_positions - static_cast<std::int64_t>(prefix.size()));
    audio::log_mel_options mel_options;  // Whisper's front end, sized for the model's encoder
    mel_options.n_mels = s.n_mels;
    mel_options.n_samples = 2 * s.n_audio_ctx * mel_options.hop;  // 480000 (30 s) for Whisper's models
    const auto window = static_cast<std::size_t>(mel_options.n_samples);

    int status = 0;
    for (const auto& file : files) {
      std::vector<std::int32_t> ids;
      try {
        const auto samples = audio::load_audio(file);  // mono, 16 kHz
        const std::size_t windows = std::max<std::size_t>(1, (samples.size() + window - 1) / window);
        cli::progress progress("transcribing " + file);
        for (std::size_t w = 0; w < windows; ++w) {
          progress.update(static_cast<std::int64_t>(w), static_cast<std::int64_t>(windows));
          const std::size_t b = w * window, n = std::min(window, samples.size() - std::min(b, samples.size()));
          std::vector<float> chunk(samples.begin() + static_cast<std::ptrdiff_t>(b), samples.begin() + static_cast<std::ptrdiff_t>(b + n));
          chunk.resize(std::max<std::size_t>(chunk.size(), 512));  // a tiny file: pad to one frame
          const auto mel = audio::log_mel_spectrogram(chunk, mel_options);  // [n_mels, 2 n_audio_ctx]
          auto features = tensor<float>::copy_of(mel.view().reshape(shape{1, mel.dim(0), mel.dim(1)}));  // [1, n_mels, frames]
          for (const auto id : greedy(model, model.encode_features(features), prefix, max_new))
            ids.push_back(id);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s: %s\n", prog.name, file.c_str(), cli::one_line(e.what()).c_str());
        std::printf("\n");
        status = 1;
        continue;
      }
      std::string text = tok.decode(ids);
      text.erase(0, text.find_first_not_of(' '));
      if (jsonl) cli::print_json({{"file", file}, {"text", text}, {"ids", ids}});
      else std::printf("%s\n", text.c_str());
      std::fflush(stdout);
    }
    return status;
  });
}
