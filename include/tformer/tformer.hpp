// tformer: the one header users include.
#pragma once

#include "config.hpp"

// core: tensors, views, element types, errors, threads
#include "core/dtype.hpp"
#include "core/eigen.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "core/memory.hpp"
#include "core/parallel.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "core/workspace.hpp"

// simd: kernels on raw rows, templated on the xsimd architecture
#include "simd/activation.hpp"
#include "simd/elementwise.hpp"
#include "simd/norm.hpp"
#include "simd/reduce.hpp"
#include "simd/softmax.hpp"

// quant: weight formats (tag types), packed matrices, the registry of formats by name
#include "quant/bf16.hpp"
#include "quant/f16.hpp"
#include "quant/f32.hpp"
#include "quant/format.hpp"
#include "quant/formats.hpp"
#include "quant/fp8.hpp"
#include "quant/hadamard.hpp"
#include "quant/int4_group.hpp"
#include "quant/int8_channel.hpp"
#include "quant/iq4_nl.hpp"
#include "quant/lowfloat.hpp"
#include "quant/matmul_integer.hpp"
#include "quant/matrix.hpp"
#include "quant/mxfp4.hpp"
#include "quant/nvfp4.hpp"
#include "quant/q4_0.hpp"
#include "quant/q4_1.hpp"
#include "quant/q4_k.hpp"
#include "quant/q5_0.hpp"
#include "quant/q5_1.hpp"
#include "quant/q5_k.hpp"
#include "quant/q6_k.hpp"
#include "quant/q8_0.hpp"
#include "quant/q8_k.hpp"
#include "quant/quantize_linear.hpp"

// ops: free functions on tensor views
#include "ops/attention.hpp"
#include "ops/conv.hpp"
#include "ops/elementwise.hpp"
#include "ops/gather.hpp"
#include "ops/matmul.hpp"
#include "ops/norm.hpp"
#include "ops/reduce.hpp"
#include "ops/softmax.hpp"

// nn: blocks that own weights, and the per-layer states of incremental decoding
#include "nn/alibi.hpp"
#include "nn/attention.hpp"
#include "nn/attention_bias.hpp"
#include "nn/attention_config.hpp"
#include "nn/conv.hpp"
#include "nn/embedding.hpp"
#include "nn/feed_forward.hpp"
#include "nn/kv_cache.hpp"
#include "nn/layers.hpp"
#include "nn/linear.hpp"
#include "nn/norm.hpp"
#include "nn/parameters.hpp"
#include "nn/positions.hpp"
#include "nn/residual.hpp"
#include "nn/rotary.hpp"
#include "nn/sliding_window_cache.hpp"
#include "nn/state.hpp"
#include "nn/t5_relative_bias.hpp"

// audio: the log-mel front end (Eigen only; reading files is tformer/audio.hpp)
#include "audio/log_mel.hpp"

// models: encoders, decoders, encoder-decoders, heads; configs, specs and states
#include "models/bart.hpp"
#include "models/bert.hpp"
#include "models/config.hpp"
#include "models/decoder.hpp"
#include "models/encoder.hpp"
#include "models/encoder_decoder.hpp"
#include "models/gguf_auto.hpp"
#include "models/gpt2.hpp"
#include "models/heads.hpp"
#include "models/hf_auto.hpp"
#include "models/llama.hpp"
#include "models/spec.hpp"
#include "models/stack.hpp"
#include "models/state.hpp"
#include "models/t5.hpp"
#include "models/whisper.hpp"

// generate: decoding strategies and logits processors
#include "generate/processors.hpp"
#include "generate/search.hpp"

// text: tokenizers used by the examples
#include "text/char_vocab.hpp"

// io: files and checkpoints
#include "io/checkpoint.hpp"
#include "io/ctranslate2.hpp"
#include "io/gguf.hpp"
#include "io/gguf_hparams.hpp"
#include "io/gguf_source.hpp"
#include "io/hf_directory.hpp"
#include "io/mapped_file.hpp"
#include "io/name_maps.hpp"
#include "io/safetensors.hpp"
