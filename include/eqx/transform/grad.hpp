#pragma once
// filter_grad, filter_value_and_grad, filter_jvp: autodiff of functions on
// pytrees. The function is traced to a graph, which is then evaluated with
// the primitives' JVP or VJP rules in the caller's context: eagerly, or
// inside an enclosing trace (so jit(grad(f)) compiles one plan and
// grad(grad(f)) differentiates the rules themselves).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/ad/autodiff.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

/// Tag: the function returns {value, aux}; only value is differentiated.
struct HasAux {};
inline constexpr HasAux has_aux{};

namespace detail {

/// Which of `n` leaves reverse mode differentiates: those in [begin, end).
class LeafMask {
 public:
  LeafMask(std::size_t n, std::size_t begin, std::size_t end) : bits_(std::make_unique<bool[]>(n)), n_(n) {
    for (std::size_t i = begin; i < end; ++i) bits_[i] = true;
  }
  std::span<const bool> span() const { return {bits_.get(), n_}; }

 private:
  std::unique_ptr<bool[]> bits_;  // (std::vector<bool> has no span)
  std::size_t n_;
};

/// Puts `grads` (in leaf order) into a copy of `tree`: inexact Array leaves
/// get their gradient (zeros if it is a symbolic zero), other leaves None.
struct GradFiller {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const std::vector<Array>* grads;
  std::size_t next = 0;
  Array array(const TreePath&, const Array& a) {
    if (!a.has_value()) return Array{};
    const Array& g = (*grads)[next++];
    if (!is_floating(a.dtype())) return Array{};
    return g.has_value() ? g : rule_ops().instantiate(Array{}, a.shape(), a.dtype());
  }
};

template <class Tree>
Tree fill_grads(const Tree& tree, const std::vector<Array>& grads) {
  GradFiller filler{&grads};
  TreePath path;
  return rebuild_tree(filler, path, tree);
}

/// Tangent leaves aligned with the primal leaves (None tangent: zero); for
/// filter_vjp, cotangent leaves aligned with the output leaves.
struct TangentCollector {
  std::vector<Array>* out;
  const char* fn = "filter_jvp";
  const char* what = "tangent";
  const char* of = "primal";
  bool array(const TreePath& path, const Array& primal, const Array& tangent) {
    if (!primal.has_value()) return true;
    if (tangent.has_value() && (tangent.shape() != primal.shape() || tangent.dtype() != primal.dtype()))
      throw ShapeError("eqx::" + std::string(fn) + ": the " + what + " at " + path.display() + " is " +
                       AbstractArray{tangent.shape(), tangent.dtype()}.str() + " but its " + of + " is " +
                       AbstractArray{primal.shape(), primal.dtype()}.str() + "; a " + what + " must have its " + of +
                       "'s shape and dtype");
    out->push_back(tangent);
    return true;
  }
  template <class X>
  bool static_leaf(const TreePath&, const X&, const X&) {
    return true;
  }
  bool mismatch(const TreePath& path, const std::string& what) { throw_mismatch(path, what); }
};

template <bool kAux, class F>
class ValueAndGrad {
 public:
  explicit ValueAndGrad(F f) : f_(std::move(f)) {}

  template <class First, class... Rest>
  auto operator()(const First& first, const Rest&... rest) const {
    auto traced = trace_call<F, First, Rest...>(f_, first, rest...);
    using R = decltype(traced.output);
    const Array& value = [&]() -> const Array& {
      if constexpr (kAux) return std::get<0>(traced.output);
      else return traced.output;
    }();
    if (!value.has_value() || value.ndim() != 0 || !is_floating(value.dtype()))
      throw ValueError("eqx::filter_grad: the function must return a scalar float Array (rank 0)" +
                       std::string(kAux ? " as the first element of {value, aux}" : "") + ", got " +
                       (value.has_value() ? AbstractArray{value.shape(), value.dtype()}.str() : "None") +
                       "; reduce it first (eqx::sum, eqx::mean)");
    std::pair<std::size_t, std::size_t> first_leaves;
    std::vector<Array> leaves = call_leaves(&first_leaves, f_, first, rest...);
    std::vector<Array> out_ct(traced.graph.outputs.size());
    out_ct[0] = rule_ops().scalar(1.0, value.dtype());
    LeafMask differentiate(leaves.size(), first_leaves.first, first_leaves.second);
    auto [outs, in_ct] = vjp_graph(traced.graph, leaves, out_ct, differentiate.span());
    std::vector<Array> grads(in_ct.begin() + static_cast<std::ptrdiff_t>(first_leaves.first),
                             in_ct.begin() + static_cast<std::ptrdiff_t>(first_leaves.second));
    R result = TreeDef<R>(traced.output).unflatten(outs);
    return std::pair<R, First>{std::move(result), fill_grads(first, grads)};
  }

 private:
  F f_;
};

}  // namespace detail

/// Returns a callable computing {f(args...), gradient}: the gradient of f's
/// scalar output with respect to the floating-point Array leaves of the
/// first argument, as a tree of its type (other Array leaves None, static
/// leaves copied). With `eqx::has_aux`, f returns {value, aux}.
/// Usage: `auto [loss, grads] = eqx::filter_value_and_grad(loss_fn)(model, x, y);`
template <class F>
auto filter_value_and_grad(F f) {
  return detail::ValueAndGrad<false, F>(std::move(f));
}
template <class F>
auto filter_value_and_grad(F f, HasAux) {
  return detail::ValueAndGrad<true, F>(std::move(f));
}

/// The gradient only. Usage: `Model grads = eqx::filter_grad(loss_fn)(model, x, y);`
template <class F>
auto filter_grad(F f) {
  return [vg = detail::ValueAndGrad<false, F>(std::move(f))](const auto&... args) { return vg(args...).second; };
}

/// Forward mode: {f(primals...), its tangent along `tangents`}. Primals and
/// tangents are std::tuples of f's arguments; empty tangent leaves are zero.
/// Usage: `auto [y, ty] = eqx::filter_jvp(f, std::tuple{x}, std::tuple{tx});`
template <class F, class... Args>
auto filter_jvp(const F& f, const std::tuple<Args...>& primals, const std::tuple<Args...>& tangents) {
  auto traced = std::apply([&](const auto&... a) { return detail::trace_call<F, Args...>(f, a...); }, primals);
  using R = decltype(traced.output);
  std::vector<Array> p = std::apply([&](const auto&... a) { return detail::call_leaves(nullptr, f, a...); }, primals);
  // Tangent leaves line up with primal leaves; a None tangent where the primal has a leaf is zero.
  std::vector<Array> t;
  if constexpr (detail::tree_callable<F>) t.resize(tree_leaves(f).size());
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          TreePath path;
          path.push_index(static_cast<std::int64_t>(I));
          detail::TangentCollector collect{&t};
          detail::visit_tree(collect, path, std::get<I>(primals), std::get<I>(tangents));
        }(),
        ...);
  }(std::index_sequence_for<Args...>{});
  auto [outs, touts] = jvp_graph(traced.graph, p, t);
  const RuleOps& ops = detail::rule_ops();
  for (std::size_t i = 0; i < touts.size(); ++i)
    if (!touts[i].has_value()) touts[i] = ops.instantiate(Array{}, outs[i].shape(), outs[i].dtype());
  TreeDef<R> def(traced.output);
  return std::pair<R, R>{def.unflatten(outs), def.unflatten(touts)};
}

}  // namespace eqx
