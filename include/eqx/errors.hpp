#pragma once
// eqx::error_if and eqx::branched_error_if: checks that run with the
// computation (Equinox's runtime errors).
//
// They return their input unchanged and throw eqx::RuntimeError when the
// predicate is true where the computation runs: eagerly at once, or from
// inside a jitted plan, a vmapped batch, a scan step or a cond branch. The
// check is an `error_if` equation that the returned value depends on, so,
// as in Equinox, use the returned value: a check whose result is unused is
// removed with it.

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

/// error_if[msgs](pred, index, x...) -> x...: throws msgs[index[k]] for the
/// first k where pred[k] holds (index clamped to the messages).
struct ErrorIfPrim final : Primitive {
  std::string_view name() const override { return "error_if"; }
  static const std::vector<std::string>& msgs(const Params& p) { return p.get<std::vector<std::string>>("msgs"); }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params&) const override {
    if (in.size() < 2 || in[0].dtype != DType::bool_)
      throw DTypeError("eqx::error_if: the predicate must be a bool Array, got " +
                       (in.empty() ? std::string("nothing") : in[0].str()) + "; compare first (x > 0, eqx::isnan(x))");
    if (in[1].dtype != DType::int32 || (in[1].shape != in[0].shape && !in[1].shape.empty()))
      throw ShapeError("eqx::branched_error_if: the index must be int32 of the predicate's shape " + in[0].shape.str() +
                       " or a scalar, got " + in[1].str());
    return {in.begin() + 2, in.end()};
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;

  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array> t, std::span<const Array>,
                         const Params&) const override {
    return {t.begin() + 2, t.end()};
  }
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array> ct,
                         const Params&) const override {
    std::vector<Array> out(2);
    out.insert(out.end(), ct.begin(), ct.end());
    return out;
  }
  // The values keep their batch axes; the predicate and index get theirs
  // first, both at the predicate's batched shape.
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override {
    const std::int64_t n = batch_size(x, d);
    std::vector<Array> in(x.begin(), x.end());
    if (d[0] != not_mapped || d[1] != not_mapped) {
      Array pred = o.batch_first(x[0], d[0], n);
      Array index = o.batch_first(x[1], d[1], n);
      Shape per_example_scalar = Shape::filled(pred.ndim(), 1);
      per_example_scalar[0] = n;
      if (index.shape() != pred.shape()) index = o.broadcast_to(o.reshape(index, per_example_scalar), pred.shape());
      in[0] = pred;
      in[1] = index;
    }
    return {eqx::bind(*this, in, p), std::vector<std::int64_t>(d.begin() + 2, d.end())};
  }
};

}  // namespace detail

namespace prim {
inline const detail::ErrorIfPrim error_if;
}  // namespace prim

#if EQX_KERNELS_HERE(CONTROL_FLOW)
namespace detail {
EQX_KERNEL_INLINE void ErrorIfPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  const bool* pred = in[0].as<const bool>();
  const std::int32_t* index = in[1].as<const std::int32_t>();
  const std::int64_t n = in[0].numel();
  const bool scalar_index = in[1].shape->empty();
  const auto& m = msgs(p);
  for (std::int64_t k = 0; k < n; ++k)
    if (pred[k]) {
      const std::int64_t i = std::clamp<std::int64_t>(index[scalar_index ? 0 : k], 0, static_cast<std::int64_t>(m.size()) - 1);
      throw RuntimeError(m[static_cast<std::size_t>(i)]);
    }
  for (std::size_t j = 0; j < out.size(); ++j) copy_bytes(out[j].data, in[j + 2].data, out[j].bytes());
}
}  // namespace detail
#endif

/// `x` (any pytree) unchanged; throws eqx::RuntimeError with `msgs[index]`
/// where `pred` is true when this runs (index and pred broadcast together;
/// an index out of range is clamped). Use the returned value.
/// Usage: `x = eqx::branched_error_if(x, x < 0, code, {"negative input", "negative output"});`
template <class T>
T branched_error_if(const T& x, const Array& pred, const Array& index, std::vector<std::string> msgs) {
  if (msgs.empty()) throw ValueError("eqx::branched_error_if: give at least one message");
  if (!pred.has_value() || pred.dtype() != DType::bool_)
    throw DTypeError("eqx::error_if: the predicate must be a bool Array, got " +
                     (pred.has_value() ? AbstractArray{pred.shape(), pred.dtype()}.str() : std::string("None")) +
                     "; compare first (x > 0, eqx::isnan(x))");
  std::vector<Array> in{pred, astype(index, DType::int32)};
  for (const Array& a : tree_leaves(x)) in.push_back(a);
  std::vector<Array> out = eqx::bind(prim::error_if, in, Params{}.set("msgs", std::move(msgs)));
  return TreeDef<T>(x).unflatten(out);
}

/// `x` (any pytree) unchanged; throws eqx::RuntimeError(msg) if any element
/// of the bool Array `pred` is true when this runs. Use the returned value.
/// Usage: `y = eqx::error_if(y, eqx::any(eqx::isnan(y)), "NaN in the loss");`
template <class T>
T error_if(const T& x, const Array& pred, std::string msg) {
  return branched_error_if(x, pred, array(std::int32_t{0}), {std::move(msg)});
}

}  // namespace eqx
