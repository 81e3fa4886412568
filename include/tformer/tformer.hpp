// tformer: the one header users include.
#pragma once

#include "config.hpp"
#include "core/dtype.hpp"
#include "core/eigen.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "core/memory.hpp"
#include "core/parallel.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "ops/matmul.hpp"
