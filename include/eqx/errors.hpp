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
//
// What a failed check does is the process's mode (Equinox's EQX_ON_ERROR):
//   raise  (default) throw eqx::RuntimeError
//   nan    return the input with every value replaced: NaN for floats, the
//          largest value for integers, true for bools; the computation goes on
//   off    return the input unchanged
// The environment variable EQX_ON_ERROR gives it, read once; set_on_error
// (or an OnErrorScope) changes it for the whole process. The mode is read
// when a check runs, not when it is traced, so a function jitted once
// follows the mode of each call (no retrace), and constant folding leaves
// the check to run then. As in Equinox, under filter_vmap a check sees the
// whole batch: in nan mode one failing example makes the whole output NaN.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/core/dtype.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

/// What a failed error_if does (Equinox's EQX_ON_ERROR values).
enum class OnError : std::uint8_t {
  raise,  ///< throw eqx::RuntimeError (the default)
  nan,    ///< replace the checked values: NaN for floats, the largest value for integers, true for bools
  off,    ///< return the values unchanged
};

namespace detail {

/// Parses an EQX_ON_ERROR value. Usage: `parse_on_error("nan") == OnError::nan`
inline OnError parse_on_error(std::string_view value) {
  if (value == "raise") return OnError::raise;
  if (value == "nan") return OnError::nan;
  if (value == "off") return OnError::off;
  if (value == "breakpoint")
    throw ValueError("EQX_ON_ERROR=breakpoint: eqx has no debugger hook; use 'raise', 'nan' or 'off' (and a "
                     "debugger's catch throw for eqx::RuntimeError)");
  throw ValueError("EQX_ON_ERROR must be 'raise', 'nan' or 'off', got '" + std::string(value) +
                   "'; unset it to raise eqx::RuntimeError (the default)");
}

/// EQX_ON_ERROR, read once (an unknown value throws at each use, so it is never ignored).
inline OnError on_error_from_env() {
  static const OnError mode = [] {
    const char* env = std::getenv("EQX_ON_ERROR");
    return env != nullptr && *env != '\0' ? parse_on_error(env) : OnError::raise;
  }();
  return mode;
}

/// set_on_error's mode, or -1 when the environment's applies.
inline std::atomic<int>& on_error_override() {
  static std::atomic<int> mode{-1};
  return mode;
}

}  // namespace detail

/// The mode failed checks use now: set_on_error's, else EQX_ON_ERROR's,
/// else raise. Throws eqx::ValueError if EQX_ON_ERROR holds an unknown value.
/// Usage: `if (eqx::on_error() == eqx::OnError::nan) ...`
inline OnError on_error() {
  const int mode = detail::on_error_override().load(std::memory_order_relaxed);
  return mode >= 0 ? static_cast<OnError>(mode) : detail::on_error_from_env();
}

/// Sets the mode of every later check in the process, compiled ones too,
/// and returns the previous mode (EQX_ON_ERROR is checked first: an unknown
/// value throws eqx::ValueError and changes nothing).
/// Usage: `eqx::OnError before = eqx::set_on_error(eqx::OnError::nan);`
inline OnError set_on_error(OnError mode) {
  const OnError previous = on_error();
  detail::on_error_override().store(static_cast<int>(mode), std::memory_order_relaxed);
  return previous;
}

/// Sets the mode for its lifetime, then restores the previous one.
/// Usage: `{ eqx::OnErrorScope nan_mode(eqx::OnError::nan); y = step(x); }`
class OnErrorScope {
 public:
  explicit OnErrorScope(OnError mode) : previous_(set_on_error(mode)) {}
  ~OnErrorScope() { set_on_error(previous_); }
  OnErrorScope(const OnErrorScope&) = delete;
  OnErrorScope& operator=(const OnErrorScope&) = delete;

 private:
  OnError previous_;
};

namespace detail {

/// error_if[msgs](pred, index, x...) -> x...: when pred[k] holds for some k,
/// throws msgs[index[k]] for the first such k (index clamped to the
/// messages), or fills every x with nan_like, or passes x on, as the mode
/// says when it runs.
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
  bool foldable() const override { return false; }  // the mode is read when the check runs

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
  const OnError mode = on_error();
  const bool* failed = mode == OnError::off ? pred + n : std::find(pred, pred + n, true);
  if (failed == pred + n) {
    for (std::size_t j = 0; j < out.size(); ++j) copy_bytes(out[j].data, in[j + 2].data, out[j].bytes());
    return;
  }
  if (mode == OnError::raise) {
    const std::int64_t k = failed - pred;
    const std::int64_t i = std::clamp<std::int64_t>(index[scalar_index ? 0 : k], 0, static_cast<std::int64_t>(m.size()) - 1);
    throw RuntimeError(m[static_cast<std::size_t>(i)]);
  }
  for (const View& o : out)  // Equinox's _nan_like
    visit_dtype(o.dtype, [&]<class T>(T) {
      const T fill = std::is_floating_point_v<T> ? std::numeric_limits<T>::quiet_NaN()
                                                 : std::numeric_limits<T>::max();  // true for bool
      std::fill_n(o.as<T>(), o.numel(), fill);
    });
}
}  // namespace detail
#endif

/// `x` (any pytree) unchanged; throws eqx::RuntimeError with `msgs[index]`
/// where `pred` is true when this runs (index and pred broadcast together;
/// an index out of range is clamped), or, as set by EQX_ON_ERROR /
/// set_on_error, returns x filled with NaN (max for integers, true for
/// bools) or unchanged. Use the returned value.
/// Usage: `x = eqx::branched_error_if(x, x < 0, code, {"negative input", "negative output"});`
template <class T>
T branched_error_if(const T& x, const Array& pred, const Array& index, std::vector<std::string> msgs) {
  if (msgs.empty()) throw ValueError("eqx::branched_error_if: give at least one message");
  if (!pred.has_value() || pred.dtype() != DType::bool_)
    throw DTypeError("eqx::error_if: the predicate must be a bool Array, got " +
                     (pred.has_value() ? AbstractArray{pred.shape(), pred.dtype()}.str() : std::string("None")) +
                     "; compare first (x > 0, eqx::isnan(x))");
  (void)on_error();  // an unknown EQX_ON_ERROR is reported here, at the first check, not when one fails
  std::vector<Array> in{pred, astype(index, DType::int32)};
  for (const Array& a : tree_leaves(x)) in.push_back(a);
  std::vector<Array> out = eqx::bind(prim::error_if, in, Params{}.set("msgs", std::move(msgs)));
  return TreeDef<T>(x).unflatten(out);
}

/// `x` (any pytree) unchanged; throws eqx::RuntimeError(msg) if any element
/// of the bool Array `pred` is true when this runs (or, in the nan and off
/// modes of EQX_ON_ERROR / set_on_error, returns x filled with NaN or
/// unchanged). Use the returned value.
/// Usage: `y = eqx::error_if(y, eqx::any(eqx::isnan(y)), "NaN in the loss");`
template <class T>
T error_if(const T& x, const Array& pred, std::string msg) {
  return branched_error_if(x, pred, array(std::int32_t{0}), {std::move(msg)});
}

}  // namespace eqx
