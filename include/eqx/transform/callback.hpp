#pragma once
// filter_pure_callback: calling arbitrary C++ on concrete Arrays from inside
// compiled code (jax.pure_callback / eqx.filter_pure_callback).
//
// The call is one `pure_callback` equation holding the function (type-erased
// on flat Array leaves) and the declared result types. Its kernel copies the
// inputs into fresh Arrays, rebuilds the argument pytrees, calls the
// function, checks what it returned against `result_shape_dtypes`, and
// copies the result out. So it runs eagerly at once, and from inside
// filter_jit (or scan, cond, ...) each time the compiled code runs.
//
// "Pure" is a promise the caller makes, and the passes rely on it: an
// equation whose results are unused is removed (the callback is not called),
// two identical ones may be merged. Unlike other primitives it is never
// constant-folded: even on constant inputs the callback runs when the
// compiled code runs, not while filter_jit compiles it. An exception the
// callback throws propagates out of the call (out of the jitted function).
//
// Batching: by default a batched call loops over the examples, calling the
// callback once per example; with CallbackVmap::vectorized it is called once
// with every input batched along a leading axis (unbatched inputs broadcast)
// and must return results with that leading axis (JAX's
// vmap_method="broadcast_all"). Not differentiable: jvp and vjp throw; wrap
// the call in eqx::filter_custom_vjp (or filter_custom_jvp) to give it a
// derivative.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/path.hpp"
#include "eqx/tree/reflect.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// How filter_vmap batches a pure callback.
enum class CallbackVmap {
  sequential,  ///< one call per example (the default)
  vectorized,  ///< one call on the whole batch, batch axis first
};

namespace detail {

/// The function of a pure_callback equation, on flat Array leaves, and the
/// types it must return.
struct HostCallback final : OpaqueParam {
  std::function<std::vector<Array>(std::vector<Array>)> fn;
  std::vector<AbstractArray> result_types;
  std::vector<std::string> result_paths;  // of each result leaf, for messages
  CallbackVmap vmap = CallbackVmap::sequential;
  std::string name;
  std::string str() const override { return name; }
};

/// pure_callback[callback](x...) -> y...: calls the host function.
struct PureCallbackPrim final : Primitive {
  std::string_view name() const override { return "pure_callback"; }
  static const HostCallback& callback(const Params& p) {
    return static_cast<const HostCallback&>(*p.get<OpaqueRef>("callback"));
  }
  bool foldable() const override { return false; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const Params& p) const override {
    return callback(p).result_types;
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::vector<Array> jvp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params& p) const override;
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params& p) const override;
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

/// Throws unless the callback returned Arrays of its declared result types.
inline void check_results(const HostCallback& cb, const std::vector<Array>& results) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    const AbstractArray got{results[i].shape(), results[i].dtype()};
    const AbstractArray& want = cb.result_types[i];
    const std::string where = "eqx::filter_pure_callback: the callback " + cb.name + " returned " + got.str() +
                              " at result " + cb.result_paths[i] + ", result_shape_dtypes declares " + want.str();
    if (got.dtype != want.dtype)
      throw DTypeError(where + "; return that dtype (eqx::astype) or declare the one it returns");
    if (got.shape != want.shape)
      throw ShapeError(where + (cb.vmap == CallbackVmap::vectorized
                                    ? " (under filter_vmap a vectorized callback gets and returns the whole batch, "
                                      "batch axis first)"
                                    : "; return that shape or declare the one it returns"));
  }
}

[[noreturn]] inline void throw_not_differentiable(const Params& p) {
  throw ValueError("eqx::filter_pure_callback: the callback " + PureCallbackPrim::callback(p).name +
                   " is not differentiable (eqx cannot see into host code); give it a derivative by wrapping the "
                   "call in eqx::filter_custom_vjp (or eqx::filter_custom_jvp)");
}

}  // namespace detail

namespace prim {
inline const detail::PureCallbackPrim pure_callback;
}  // namespace prim

#if EQX_KERNELS_HERE(CONTROL_FLOW)
namespace detail {

EQX_KERNEL_INLINE void PureCallbackPrim::kernel(std::span<const View> in, std::span<const View> out,
                                                const Params& p) const {
  const HostCallback& cb = callback(p);
  std::vector<Array> args;
  args.reserve(in.size());
  for (const View& v : in) {  // copies: the callback may keep them, the buffers are reused
    Array a = ArrayAccess::allocate(*v.shape, v.dtype);
    copy_bytes(ArrayAccess::mutable_data(a), v.data, v.bytes());
    args.push_back(std::move(a));
  }
  std::vector<Array> results = cb.fn(std::move(args));
  check_results(cb, results);
  for (std::size_t i = 0; i < out.size(); ++i) copy_bytes(out[i].data, results[i].raw_data(), out[i].bytes());
}

EQX_KERNEL_INLINE std::vector<Array> PureCallbackPrim::jvp(const RuleOps&, std::span<const Array>,
                                                           std::span<const Array>, std::span<const Array>,
                                                           const Params& p) const {
  throw_not_differentiable(p);
}

EQX_KERNEL_INLINE std::vector<Array> PureCallbackPrim::vjp(const RuleOps&, std::span<const Array>,
                                                           std::span<const Array>, std::span<const Array>,
                                                           const Params& p) const {
  throw_not_differentiable(p);
}

// A new callback on the batch: vectorized, the same function on inputs with
// the batch axis first; sequential, a loop calling it on each example's
// slice and stacking the results.
EQX_KERNEL_INLINE Batched PureCallbackPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d,
                                                  const Params& p) const {
  const HostCallback& cb = callback(p);
  const std::int64_t n = batch_size(x, d);
  auto batched = std::make_shared<HostCallback>(cb);
  for (AbstractArray& t : batched->result_types) t.shape.insert(0, n);
  if (cb.vmap == CallbackVmap::sequential) {
    std::vector<bool> mapped;
    for (std::int64_t dim : d) mapped.push_back(dim != not_mapped);
    auto per_example = std::static_pointer_cast<const HostCallback>(p.get<OpaqueRef>("callback"));
    batched->fn = [per_example, mapped, n](std::vector<Array> args) {
      // Mapped inputs have their batch axis first (below): example b is the b-th block.
      auto block = [](const Array& a, std::int64_t b) {
        Array e = ArrayAccess::allocate(Shape(a.shape().begin() + 1, a.shape().end()), a.dtype());
        const std::size_t bytes = static_cast<std::size_t>(e.size()) * itemsize(e.dtype());
        copy_bytes(ArrayAccess::mutable_data(e), static_cast<const std::byte*>(a.raw_data()) + b * bytes, bytes);
        return e;
      };
      std::vector<Array> stacked;
      for (const AbstractArray& t : per_example->result_types) {
        Shape s = t.shape;
        s.insert(0, n);
        stacked.push_back(ArrayAccess::allocate(std::move(s), t.dtype));
      }
      for (std::int64_t b = 0; b < n; ++b) {
        std::vector<Array> example;
        for (std::size_t i = 0; i < args.size(); ++i) example.push_back(mapped[i] ? block(args[i], b) : args[i]);
        std::vector<Array> r = per_example->fn(std::move(example));
        check_results(*per_example, r);
        for (std::size_t k = 0; k < r.size(); ++k) {
          const std::size_t bytes = static_cast<std::size_t>(r[k].size()) * itemsize(r[k].dtype());
          copy_bytes(static_cast<std::byte*>(ArrayAccess::mutable_data(stacked[k])) + b * bytes, r[k].raw_data(), bytes);
        }
      }
      return stacked;
    };
  }
  std::vector<Array> in;
  for (std::size_t i = 0; i < x.size(); ++i)
    in.push_back(d[i] == not_mapped && cb.vmap == CallbackVmap::sequential ? x[i] : o.batch_first(x[i], d[i], n));
  std::vector<Array> out = eqx::bind(*this, in, Params(p).set("callback", OpaqueRef(std::move(batched))));
  return {out, std::vector<std::int64_t>(out.size(), 0)};
}

}  // namespace detail
#endif

/// Calls `callback(args...)` on concrete Arrays wherever this runs: eagerly
/// at once, or from inside filter_jit / filter_vmap / scan each time the
/// compiled code runs. `result_shape_dtypes` is a pytree like the one the
/// callback returns, with eqx::shape_dtype_struct (or any Array of the
/// type) at each Array leaf; the callback must return exactly that
/// structure, static leaves and types (else eqx::ValueError / ShapeError /
/// DTypeError naming the result's path). The callback must be pure: if its
/// result is unused it may not be called at all. `vmap` says how
/// filter_vmap batches it; it is not differentiable.
/// Usage: `eqx::Array y = eqx::filter_pure_callback([](const eqx::Array& x) { return host_fn(x); },
///                                                  eqx::shape_dtype_struct({3}, eqx::float32), x);`
template <class F, class R, class... Args>
R filter_pure_callback(CallbackVmap vmap, F callback, const R& result_shape_dtypes, const Args&... args) {
  static_assert(std::is_invocable_v<const F&, const Args&...>,
                "eqx::filter_pure_callback: the callback must be callable with the arguments given after "
                "result_shape_dtypes");
  static_assert(std::is_same_v<std::remove_cvref_t<std::invoke_result_t<const F&, const Args&...>>, R>,
                "eqx::filter_pure_callback: the callback must return the type of result_shape_dtypes");
  auto hc = std::make_shared<detail::HostCallback>();
  hc->name = std::string(detail::type_name<F>());
  hc->vmap = vmap;
  for (const auto& [path, a] : tree_leaves_with_path(result_shape_dtypes)) {
    hc->result_types.push_back({a.shape(), a.dtype()});
    hc->result_paths.push_back(path.display());
  }
  detail::SkeletonBuilder skel;
  TreePath untracked = TreePath::untracked();
  auto result_skeleton = std::make_shared<const R>(detail::rebuild_tree(skel, untracked, result_shape_dtypes));
  auto arg_defs = std::make_shared<const std::tuple<TreeDef<Args>...>>(TreeDef<Args>(args)...);
  hc->fn = [callback = std::move(callback), arg_defs, result_skeleton,
            present = std::move(skel.present)](std::vector<Array> leaves) {
    std::size_t next = 0;
    auto take = [&](const auto& def) {
      std::vector<Array> mine(leaves.begin() + static_cast<std::ptrdiff_t>(next),
                              leaves.begin() + static_cast<std::ptrdiff_t>(next + def.num_leaves()));
      next += def.num_leaves();
      return def.unflatten(mine);
    };
    auto host_args = std::apply([&](const auto&... defs) { return std::tuple<Args...>{take(defs)...}; }, *arg_defs);
    R result = std::apply(callback, host_args);
    std::vector<Array> out;
    detail::ExampleChecker checker{"eqx::filter_pure_callback: the callback's result",
                                   "return exactly the structure and static values of result_shape_dtypes", present,
                                   {}, out};
    TreePath p;
    detail::visit_tree(checker, p, result, *result_skeleton);
    return out;
  };
  std::vector<Array> in = detail::call_leaves(nullptr, [] {}, args...);  // the arguments' leaves only
  std::vector<Array> out = eqx::bind(prim::pure_callback, in, Params{}.set("callback", OpaqueRef(std::move(hc))));
  return TreeDef<R>(result_shape_dtypes).unflatten(out);
}

/// filter_pure_callback batched one example at a time (CallbackVmap::sequential).
/// Usage: `auto [lo, hi] = eqx::filter_pure_callback(host_minmax, std::pair{like, like}, x);`
template <class F, class R, class... Args>
  requires(!std::is_same_v<std::decay_t<F>, CallbackVmap>)
R filter_pure_callback(F callback, const R& result_shape_dtypes, const Args&... args) {
  return filter_pure_callback(CallbackVmap::sequential, std::move(callback), result_shape_dtypes, args...);
}

}  // namespace eqx
