// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers", ICLR 2023): quantizes a linear's weight W [n, k] column by column, and after each
// column spreads its rounding error over the columns not yet quantized so that the layer's output
// on calibration inputs changes as little as possible. The statistic is H = (1 / N) sum_t x_t x_t^T
// over the N calibration rows x_t [k] the linear saw (quant::hessian; GPTQ's 2 / N scaling only
// rescales H, which nothing below depends on).
//
// The algorithm, as the paper's reference implementation runs it:
//   - a dead input (H_ii = 0: never nonzero in calibration) gets H_ii = 1 and W[:, i] = 0;
//   - act-order (optional): columns are taken in order of decreasing H_ii;
//   - dampening: H += damp * mean(diag H) * I (damp = 0.01 by default);
//   - U = the upper Cholesky factor of H^-1 (H^-1 from H's Cholesky factor);
//   - for column i: q = the format's code nearest W[:, i], e = (W[:, i] - q) / U_ii, and W[:, j] -=
//     e U_ij for the later columns j; "lazy batches": inside a batch of columns the update is
//     applied column by column, to the rest of the matrix once per batch (one GEMM);
//   - groups: a format's block (32 weights for q4_0, G for int4_group<G>) is GPTQ's group. Without
//     act-order a block's scales are chosen (by the format's own quantize_row) from the block's
//     weights as updated when its first column comes up, as the reference does; with act-order
//     every block's scales are chosen from the unquantized weights before the first column (the
//     reference's "static groups"), since columns then arrive out of block order.
// Work is in double. The per-weight step is the format's requantize_weight (requantize.hpp): q4_0,
// q4_1, q5_0, q5_1, q8_0 and int4_group<G> have it (quant::requantizable_format).
//
// Deviation from the reference: when a block's first column comes up inside a lazy batch, the
// reference chooses its scales from weights that lack the current batch's updates (it reads the
// matrix, not the batch's working copy); here batches hold whole blocks and the scales come from
// the weights as they stand, the value the paper's algorithm describes.
//
//   quant::hessian h(k);  h.add(x);  ...                    // or quant::hessians over a model
//   quant::matrix<quant::q4_0> q = quant::gptq<quant::q4_0>(w, h);
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "format.hpp"
#include "matrix.hpp"
#include "observed.hpp"

namespace tformer::quant {

/// @brief The second moment of a linear's input over calibration rows: H = (1 / N) sum_t x_t x_t^T,
/// [k, k], accumulated in double (each add's rows in float, then added in double).
class hessian {
 public:
  hessian() = default;
  /// @brief An empty statistic for inputs of k features.
  explicit hessian(std::int64_t k) : sum_(Eigen::MatrixXd::Zero(k, k)) {
    if (k < 1) throw shape_error("tformer::quant::hessian: the input size must be positive, not " + std::to_string(k));
  }

  std::int64_t size() const noexcept { return sum_.rows(); }
  /// @brief Number of rows added (N).
  std::int64_t samples() const noexcept { return samples_; }

  /// @brief Adds the rows of x [..., k]: a matrix [m, k] may have a row stride; an input of higher
  /// rank must be contiguous.
  /// value_error when a row holds a NaN or an infinity.
  void add(tensor_view<const float> x) {
    if (x.rank() < 1 || x.dim(-1) != size())
      throw shape_error("tformer::quant::hessian: input " + x.shape().to_string() + " must end in " +
                        std::to_string(size()) + " features");
    if (x.numel() == 0) return;
    if ((x.dim(-1) > 1 && x.stride(-1) != 1) || (x.rank() > 2 && !x.is_contiguous()))
      throw shape_error("tformer::quant::hessian: input rows must be contiguous (and, above rank 2, the whole input)");
    const std::int64_t m = x.rows(), k = size();
    const std::int64_t ld = x.rank() >= 2 ? x.stride(-2) : k;
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>
        rows(x.data(), m, k, Eigen::OuterStride<>(ld));  // [m, k]
    if (!rows.allFinite())
      throw value_error("tformer::quant::hessian: the calibration input [" + std::to_string(m) + ", " +
                        std::to_string(k) + "] holds a NaN or an infinity");
    Eigen::MatrixXf gram = Eigen::MatrixXf::Zero(k, k);  // [k, k], lower triangle: x^T x
    gram.selfadjointView<Eigen::Lower>().rankUpdate(rows.transpose());
    sum_.triangularView<Eigen::Lower>() += gram.cast<double>();
    samples_ += m;
  }

  /// @brief H [k, k] (zero before any add).
  Eigen::MatrixXd matrix() const {
    Eigen::MatrixXd h = sum_.selfadjointView<Eigen::Lower>();
    if (samples_ > 0) h /= static_cast<double>(samples_);
    return h;
  }

 private:
  Eigen::MatrixXd sum_;  // [k, k] sum_t x_t x_t^T, lower triangle
  std::int64_t samples_ = 0;
};

/// @brief GPTQ's settings.
struct gptq_options {
  double damp = 0.01;        ///< damp * mean(diag H) is added to H's diagonal (GPTQ's percdamp)
  std::int64_t batch = 128;  ///< columns per lazy batch (rounded up to whole blocks of the format)
  bool act_order = false;    ///< columns in order of decreasing H_ii ("desc_act"), static groups
};

/// @brief What a gptq call measured.
struct gptq_report {
  double damp = 0;  ///< the dampening used: options.damp, or 10x it per retry when H + damp was not positive definite
};

/// @brief mean_t |(W - Q) x_t|^2 over the calibration rows, = sum_r (W - Q)_r H (W - Q)_r^T: the
/// layer's output error that GPTQ minimizes, for W [n, k] and a quantized Q of the same shape.
template <weight_format F>
double output_error(tensor_view<const float> w, const matrix<F>& q, const hessian& h) {
  if (w.rank() != 2 || !(w.shape() == q.shape()) || w.dim(1) != h.size())
    throw shape_error("tformer::quant::output_error: weight " + w.shape().to_string() + ", quantized " +
                      q.shape().to_string() + " and a hessian of " + std::to_string(h.size()) + " inputs do not match");
  const tensor<float> qf = q.to_float();
  Eigen::MatrixXd delta(w.dim(0), w.dim(1));  // [n, k]
  for (std::int64_t r = 0; r < w.dim(0); ++r)
    for (std::int64_t c = 0; c < w.dim(1); ++c)
      delta(r, c) = static_cast<double>(w.data()[r * w.stride(0) + c * w.stride(1)]) - qf.data()[r * w.dim(1) + c];
  return ((delta * h.matrix()).cwiseProduct(delta)).sum();
}

/// @brief Quantizes w [n, k] into format F by GPTQ with the calibration statistic h (k inputs).
/// shape_error when the sizes disagree or k is not a multiple of F::block_size; value_error for no
/// calibration rows, a weight that is not finite, bad options, or an H that stays not positive
/// definite with the dampening raised to 100 times the mean diagonal.
template <requantizable_format F>
matrix<F> gptq(tensor_view<const float> w, const hessian& h, const gptq_options& options = {},
               gptq_report* report = nullptr) {
  using Eigen::Index;
  const std::string who = std::string("tformer::quant::gptq<") + F::name + ">: ";
  if (w.rank() != 2) throw shape_error(who + "the weight must be [out, in], not " + w.shape().to_string());
  const Index n = w.dim(0), k = w.dim(1), block = F::block_size;
  if (k != h.size())
    throw shape_error(who + "the weight " + w.shape().to_string() + " has " + std::to_string(k) +
                      " inputs, the hessian " + std::to_string(h.size()));
  if (k % block != 0)
    throw shape_error(who + "the weight's " + std::to_string(k) + " inputs are not whole blocks of " +
                      std::to_string(block));
  if (h.samples() < 1) throw value_error(who + "the hessian has no calibration rows");
  if (!(options.damp >= 0) || !std::isfinite(options.damp) || options.batch < 1)
    throw value_error(who + "damp must be finite and >= 0 and batch >= 1");

  Eigen::MatrixXd W(n, k);  // [n, k], columns in the order they are quantized (after act-order)
  for (Index r = 0; r < n; ++r)
    for (Index c = 0; c < k; ++c) {
      const float v = w.data()[r * w.stride(0) + c * w.stride(1)];
      if (!std::isfinite(v))
        throw value_error(who + "weight [" + std::to_string(r) + ", " + std::to_string(c) + "] is not finite");
      W(r, c) = v;
    }
  Eigen::MatrixXd H = h.matrix();  // [k, k]
  for (Index i = 0; i < k; ++i)
    if (H(i, i) == 0) {  // a dead input: nothing to preserve, and H must stay invertible
      H(i, i) = 1;
      W.col(i).setZero();
    }

  matrix<F> q(n, k);
  std::vector<float> row(static_cast<std::size_t>(k));  // one row of weights in float: [k]
  std::vector<Index> perm(static_cast<std::size_t>(k));  // perm[i]: the column quantized i-th
  std::iota(perm.begin(), perm.end(), Index{0});
  if (options.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](Index a, Index b) { return H(a, a) > H(b, b); });
    for (Index r = 0; r < n; ++r) {  // static groups: every block's scales from the unquantized weights
      for (Index c = 0; c < k; ++c) row[static_cast<std::size_t>(c)] = static_cast<float>(W(r, c));
      F::quantize_row(row.data(), q.row(r), k);
    }
    const Eigen::MatrixXd w0 = W, h0 = H;
    for (Index i = 0; i < k; ++i) {
      W.col(i) = w0.col(perm[static_cast<std::size_t>(i)]);
      for (Index j = 0; j < k; ++j) H(i, j) = h0(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
    }
  }

  // U: the upper Cholesky factor of (H + damp)^-1 [k, k]
  const double mean_diag = H.diagonal().mean();
  double damp = options.damp;
  Eigen::MatrixXd U;
  for (;;) {
    Eigen::MatrixXd hd = H;
    hd.diagonal().array() += damp * mean_diag;
    const Eigen::LLT<Eigen::MatrixXd> llt(hd);
    if (llt.info() == Eigen::Success) {
      const Eigen::LLT<Eigen::MatrixXd> inv(llt.solve(Eigen::MatrixXd::Identity(k, k)));
      if (inv.info() == Eigen::Success) {
        U = inv.matrixU();
        if (U.allFinite() && (U.diagonal().array() > 0).all()) break;
      }
    }
    damp = damp > 0 ? damp * 10 : 1e-4;
    if (damp > 100)
      throw value_error(who + "the calibration hessian is not positive definite even with damp = " +
                        std::to_string(damp / 10) + " (too few or degenerate calibration rows?)");
  }
  if (report) report->damp = damp;

  const Index batch = std::max<Index>((options.batch + block - 1) / block * block, block);
  Eigen::MatrixXd err(n, batch);  // [n, batch]: the scaled errors of the batch's columns
  for (Index i1 = 0; i1 < k; i1 += batch) {
    const Index i2 = std::min(i1 + batch, k), count = i2 - i1;
    for (Index i = i1; i < i2; ++i) {
      if (!options.act_order && i % block == 0)  // the block's scales, from its weights as they stand
        for (Index r = 0; r < n; ++r) {
          for (Index c = 0; c < block; ++c) row[static_cast<std::size_t>(c)] = static_cast<float>(W(r, i + c));
          F::quantize_row(row.data(), q.row(r) + i / block * F::block_bytes, block);
        }
      const Index col = perm[static_cast<std::size_t>(i)];
      const double d = U(i, i);
      for (Index r = 0; r < n; ++r) {
        const double v = W(r, i);
        const double qv = F::requantize_weight(q.row(r), col, static_cast<float>(v));
        err(r, i - i1) = (v - qv) / d;
      }
      if (i + 1 < i2) W.middleCols(i + 1, i2 - i - 1).noalias() -= err.col(i - i1) * U.block(i, i + 1, 1, i2 - i - 1);
    }
    if (i2 < k) W.rightCols(k - i2).noalias() -= err.leftCols(count) * U.block(i1, i2, count, k - i2);
  }
  return q;
}

/// @brief A hessian for every linear of a model whose weight is in an observed<F> format: a
/// linear_observer that, installed with observe_linears while the model runs on calibration
/// inputs, adds each linear's input to its weight's hessian.
class hessians : public linear_observer {
 public:
  /// @brief One empty hessian per observed matrix that m.visit(v, "") names.
  template <class M>
  explicit hessians(M& m) {
    m.visit(
        [&](const std::string& name, auto& p) {
          using P = std::remove_cvref_t<decltype(p)>;
          if constexpr (is_matrix<P>)
            if constexpr (observed_format<typename P::format>) {
              index_.emplace(static_cast<const void*>(&p), name);
              by_name_.emplace(name, hessian(p.cols()));
            }
        },
        "");
  }

  /// @brief Adds x to the hessian of the matrix at weight; inputs of matrices the model did not
  /// name are ignored.
  void observe(const void* weight, tensor_view<const float> x) override {
    const auto it = index_.find(weight);
    if (it != index_.end()) by_name_.at(it->second).add(x);
  }

  /// @brief The hessian of the parameter called name; value_error when there is none.
  const hessian& at(const std::string& name) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) throw value_error("tformer::quant::hessians: no observed linear is called '" + name + "'");
    return it->second;
  }
  bool contains(const std::string& name) const { return by_name_.count(name) != 0; }
  std::size_t size() const noexcept { return by_name_.size(); }
  /// @brief name -> hessian, in name order.
  const std::map<std::string, hessian>& all() const noexcept { return by_name_; }

 private:
  std::map<const void*, std::string> index_;
  std::map<std::string, hessian> by_name_;
};

}  // namespace tformer::quant
