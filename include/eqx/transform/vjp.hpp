#pragma once
// filter_vjp: reverse mode with the pullback kept for later, as jax.vjp on
// pytrees. The forward pass runs once and its values are kept on a tape;
// each call of the returned vjp_fn runs one backward pass over it.

#include <cstddef>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "eqx/ad/autodiff.hpp"
#include "eqx/transform/grad.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

/// Maps an output cotangent tree to the cotangents of f's arguments.
template <class R, class... Args>
class VjpFn {
 public:
  VjpFn(std::shared_ptr<const VjpTape> tape, R out_structure, std::tuple<Args...> args, std::size_t first_arg_leaf)
      : tape_(std::move(tape)), out_(std::move(out_structure)), args_(std::move(args)), first_(first_arg_leaf) {}

  /// The cotangents of the arguments, one tree per argument: floating
  /// Array leaves get arrays (zeros where no cotangent reaches them), other
  /// leaves are None and static leaves are copied. None cotangent leaves
  /// are zero. Usage: `auto [dx, dy] = vjp_fn(ct);`
  std::tuple<Args...> operator()(const R& cotangent) const {
    std::vector<Array> ct;
    TreePath path;
    TangentCollector collect{&ct, "filter_vjp", "cotangent", "output"};
    visit_tree(collect, path, out_, cotangent);
    std::vector<Array> in_ct = vjp_backward(*tape_, ct);
    std::size_t next = first_;
    return std::apply(
        [&](const auto&... a) {
          return std::tuple<Args...>{[&] {
            std::size_t n = tree_leaves(a).size();
            std::vector<Array> part(in_ct.begin() + static_cast<std::ptrdiff_t>(next),
                                    in_ct.begin() + static_cast<std::ptrdiff_t>(next + n));
            next += n;
            return fill_grads(a, part);
          }()...};
        },
        args_);
  }

 private:
  std::shared_ptr<const VjpTape> tape_;
  R out_;
  std::tuple<Args...> args_;
  std::size_t first_;
};

}  // namespace detail

/// Reverse mode on pytrees: returns {f(args...), vjp_fn}, where vjp_fn maps
/// a cotangent tree of f's output type to a std::tuple of cotangent trees,
/// one per argument, with respect to every floating-point Array leaf of
/// every argument (f's own fields, when f is a module, are not
/// differentiated). The forward pass runs once; vjp_fn may be called many
/// times. Usage: `auto [y, vjp_fn] = eqx::filter_vjp(f, x); auto [dx] = vjp_fn(eqx::ones_like(y));`
template <class F, class... Args>
auto filter_vjp(const F& f, const Args&... args) {
  auto traced = detail::trace_call<F, Args...>(f, args...);
  using R = decltype(traced.output);
  std::pair<std::size_t, std::size_t> first{0, 0};
  std::vector<Array> leaves = detail::call_leaves(&first, f, args...);
  detail::LeafMask differentiate(leaves.size(), first.first, leaves.size());
  auto tape = std::make_shared<const VjpTape>(std::make_shared<const Graph>(std::move(traced.graph)), leaves,
                                              differentiate.span());
  TreeDef<R> def(traced.output);
  R out = def.unflatten(tape->outputs);
  R structure = out;
  return std::pair<R, detail::VjpFn<R, Args...>>{
      std::move(out), detail::VjpFn<R, Args...>(std::move(tape), std::move(structure), std::tuple<Args...>(args...), first.first)};
}

}  // namespace eqx
