// tformer::text: tokenizers (Hugging Face tokenizer.json and GGUF vocabularies). Opt-in: link
// the tformer::text target, which brings PCRE2 and utf8proc; tformer.hpp does not include this.
#pragma once

#include "text/bpe.hpp"
#include "text/char_vocab.hpp"
#include "text/decoder.hpp"
#include "text/encoding.hpp"
#include "text/gguf_tokenizer.hpp"
#include "text/json_config.hpp"
#include "text/llama_spm.hpp"
#include "text/model.hpp"
#include "text/normalizer.hpp"
#include "text/post_processor.hpp"
#include "text/pre_tokenizer.hpp"
#include "text/precompiled_charsmap.hpp"
#include "text/regex.hpp"
#include "text/tokenizer.hpp"
#include "text/unicode.hpp"
#include "text/unigram.hpp"
#include "text/wordpiece.hpp"
