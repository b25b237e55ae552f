#pragma once
// eqx::cond and eqx::switch_: run one of several branches, chosen at run
// time (jax.lax.cond / jax.lax.switch).
//
// One `cond` equation holds every branch; its operands are the branch index
// (int32, clamped to the branches, as lax.switch does) and the operands all
// branches take. Rules:
//   kernel   runs the chosen branch's compiled plan;
//   JVP      a cond of the branches' JVPs (tangent outputs nonzero if any
//            branch makes them so);
//   VJP      a cond of the branches' VJPs (each recomputes its branch);
//   batching with an unbatched index, a cond of the batched branches; with
//            a batched index every branch runs on the whole batch and each
//            example's result is selected (as JAX does).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/batching.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/subgraph.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

struct CondPrim final : Primitive {
  std::string_view name() const override { return "cond"; }
  static const std::vector<GraphRef>& branches(const Params& p) { return p.get<std::vector<GraphRef>>("branches"); }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    if (in.empty() || in[0] != AbstractArray{Shape{}, DType::int32})
      throw DTypeError("eqx::cond: the branch index must be an i32[] scalar, got " +
                       (in.empty() ? std::string("nothing") : in[0].str()));
    const auto& bs = branches(p);
    const std::vector<AbstractArray> operands(in.begin() + 1, in.end()), out = bs.at(0)->output_types();
    for (std::size_t b = 0; b < bs.size(); ++b) {
      if (bs[b]->input_types() != operands)
        throw ShapeError("eqx::cond: branch " + std::to_string(b) + " takes (" + types_str(bs[b]->input_types()) +
                         ") but the operands are (" + types_str(operands) + ")");
      if (bs[b]->output_types() != out)
        throw ShapeError("eqx::cond: branch " + std::to_string(b) + " returns (" + types_str(bs[b]->output_types()) +
                         ") but branch 0 returns (" + types_str(out) + "); every branch must return the same types");
    }
    return out;
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::unique_ptr<PreparedKernel> prepare(const Params& p) const override;

  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                         std::span<const Array> ct, const Params& p) const override;
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

}  // namespace detail

namespace prim {
inline const detail::CondPrim cond;
}  // namespace prim

namespace detail {

#if EQX_KERNELS_HERE(CONTROL_FLOW)
/// cond's kernel with every branch compiled once: runs the branch the
/// index picks (clamped into range, as lax.switch), its argument and
/// result pointer lists in the scratch.
class CondKernel final : public PreparedKernel {
 public:
  explicit CondKernel(const Params& p) {
    for (const GraphRef& b : CondPrim::branches(p)) branches_.push_back(compiled_body(b));
    const Graph& first = *CondPrim::branches(p).front();
    args_at_ = scratch_.reserve(first.inputs.size() * sizeof(const void*));
    results_at_ = scratch_.reserve(first.outputs.size() * sizeof(void*));
  }
  std::size_t scratch_bytes() const override { return scratch_.bytes(); }

  void run(std::span<const View> in, std::span<const View> out, void* scratch) const override {
    auto* base = static_cast<std::byte*>(scratch);
    auto** args = reinterpret_cast<const void**>(base + args_at_);
    auto** results = reinterpret_cast<void**>(base + results_at_);
    const std::int64_t index = std::clamp<std::int64_t>(*in[0].as<const std::int32_t>(), 0,
                                                        static_cast<std::int64_t>(branches_.size()) - 1);
    for (std::size_t i = 1; i < in.size(); ++i) args[i - 1] = in[i].data;
    for (std::size_t i = 0; i < out.size(); ++i) results[i] = out[i].data;
    branches_[static_cast<std::size_t>(index)]->run_into(args, results);
  }

 private:
  std::vector<std::shared_ptr<const Plan>> branches_;
  ScratchLayout scratch_;
  std::size_t args_at_ = 0, results_at_ = 0;
};

EQX_KERNEL_INLINE std::unique_ptr<PreparedKernel> CondPrim::prepare(const Params& p) const {
  return std::make_unique<CondKernel>(p);
}
EQX_KERNEL_INLINE void CondPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  run_prepared(CondKernel(p), in, out);
}

/// Each branch, rebuilt by `fn(branch, inputs) -> outputs` on inputs of `types`.
template <class Fn>
std::vector<GraphRef> map_branches(const std::vector<GraphRef>& bs, std::span<const AbstractArray> types, Fn fn) {
  std::vector<GraphRef> out;
  for (const GraphRef& b : bs)
    out.push_back(trace_graph(types, [&](std::span<const Array> in) { return fn(*b, in); }));
  return out;
}

// Operands of the JVP cond: [index, operands, nonzero tangents].
EQX_KERNEL_INLINE std::vector<Array> CondPrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                   std::span<const Array> y, const Params& p) const {
  const auto& bs = branches(p);
  const std::size_t n = x.size() - 1;
  std::vector<AbstractArray> types = bs[0]->input_types();
  std::vector<std::size_t> nz;
  for (std::size_t i = 0; i < n; ++i)
    if (t[i + 1].has_value() && is_floating(x[i + 1].dtype())) nz.push_back(i), types.push_back(types[i]);
  std::vector<bool> out_nz(y.size(), false);
  auto tangent_outputs = [&](const Graph& b, std::span<const Array> in, bool instantiate) {
    std::vector<Array> primals(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n)), tangents(n);
    for (std::size_t k = 0; k < nz.size(); ++k) tangents[nz[k]] = in[n + k];
    auto [outs, touts] = jvp_graph(b, primals, tangents);
    for (std::size_t j = 0; j < touts.size(); ++j) {
      if (!instantiate) out_nz[j] = out_nz[j] || touts[j].has_value();
      else if (out_nz[j]) outs.push_back(o.instantiate(touts[j], outs[j].shape(), outs[j].dtype()));
    }
    return outs;
  };
  map_branches(bs, types, [&](const Graph& b, std::span<const Array> in) { return tangent_outputs(b, in, false); });
  std::vector<GraphRef> jvp_branches =
      map_branches(bs, types, [&](const Graph& b, std::span<const Array> in) { return tangent_outputs(b, in, true); });
  std::vector<Array> operands(x.begin(), x.end());
  for (std::size_t i : nz) operands.push_back(t[i + 1]);
  std::vector<Array> outs = eqx::bind(*this, operands, Params{}.set("branches", std::move(jvp_branches)));
  std::vector<Array> result(y.size());
  std::size_t next = y.size();
  for (std::size_t j = 0; j < y.size(); ++j)
    if (out_nz[j]) result[j] = outs[next++];
  return result;
}

// Operands of the VJP cond: [index, operands, cotangents of float outputs];
// it returns the cotangents of the float operands.
EQX_KERNEL_INLINE std::vector<Array> CondPrim::vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array> y,
                                                   std::span<const Array> ct, const Params& p) const {
  const auto& bs = branches(p);
  const std::size_t n = x.size() - 1;
  std::vector<AbstractArray> types = bs[0]->input_types();
  std::vector<Array> operands(x.begin(), x.end());
  std::vector<std::size_t> float_out, float_in;
  for (std::size_t j = 0; j < y.size(); ++j)
    if (is_floating(y[j].dtype())) {
      float_out.push_back(j);
      types.push_back({y[j].shape(), y[j].dtype()});
      operands.push_back(o.instantiate(ct[j], y[j].shape(), y[j].dtype()));
    }
  for (std::size_t i = 0; i < n; ++i)
    if (is_floating(x[i + 1].dtype())) float_in.push_back(i);
  std::vector<GraphRef> vjp_branches = map_branches(bs, types, [&](const Graph& b, std::span<const Array> in) {
    std::vector<Array> primals(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n)), cts(y.size());
    for (std::size_t k = 0; k < float_out.size(); ++k) cts[float_out[k]] = in[n + k];
    std::vector<Array> in_ct = vjp_graph(b, primals, cts).second, result;
    for (std::size_t i : float_in) result.push_back(o.instantiate(in_ct[i], primals[i].shape(), primals[i].dtype()));
    return result;
  });
  if (float_in.empty()) return std::vector<Array>(x.size());
  std::vector<Array> outs = eqx::bind(*this, operands, Params{}.set("branches", std::move(vjp_branches)));
  std::vector<Array> result(x.size());
  for (std::size_t k = 0; k < float_in.size(); ++k) result[float_in[k] + 1] = outs[k];
  return result;
}

EQX_KERNEL_INLINE Batched CondPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const {
  const auto& bs = branches(p);
  const std::int64_t n = batch_size(x, d);
  auto [operands, dims] = batch_axes_first(o, x.subspan(1), d.subspan(1));  // x[0] is the branch index
  if (d[0] != not_mapped) {
    // Every branch on the whole batch, then each example's branch selected.
    Array index = minimum(maximum(o.moveaxis(x[0], d[0], 0), 0), static_cast<std::int32_t>(bs.size() - 1));
    std::vector<Array> result;
    for (std::size_t b = 0; b < bs.size(); ++b) {
      Batched out = batch_graph(*bs[b], operands, dims);
      for (std::size_t j = 0; j < out.values.size(); ++j) {
        Array v = o.batch_first(out.values[j], out.dims[j], n);
        if (b == 0) {
          result.push_back(v);
          continue;
        }
        Shape mask_shape = Shape::filled(v.ndim(), 1);
        mask_shape[0] = n;
        result[j] = where(reshape(index == static_cast<std::int32_t>(b), mask_shape), v, result[j]);
      }
    }
    std::vector<std::int64_t> dims_out(result.size(), 0);
    return {std::move(result), std::move(dims_out)};
  }
  // An output is batched if any branch batches it.
  std::vector<bool> force(bs[0]->outputs.size(), false);
  std::vector<std::int64_t> out_dims;
  for (const GraphRef& b : bs) {
    batch_subgraph(*b, dims, n, {}, out_dims);
    for (std::size_t j = 0; j < out_dims.size(); ++j) force[j] = force[j] || out_dims[j] == 0;
  }
  std::vector<GraphRef> batched;
  for (const GraphRef& b : bs) batched.push_back(batch_subgraph(*b, dims, n, force, out_dims));
  operands.insert(operands.begin(), x[0]);
  return {eqx::bind(*this, operands, Params{}.set("branches", std::move(batched))), out_dims};
}
#endif

/// The operands of a cond equation built from user branches: the operand
/// leaves, then each branch's own inputs (a module's Arrays, captured
/// values), which the other branches take and ignore.
struct BranchSet {
  std::vector<GraphRef> graphs;
  std::vector<Array> operands;
};

inline BranchSet merge_branches(std::vector<TracedBody> bodies, const std::vector<Array>& operand_leaves) {
  BranchSet set{{}, operand_leaves};
  std::vector<std::size_t> first_extra;
  for (const TracedBody& b : bodies) {
    first_extra.push_back(set.operands.size());
    set.operands.insert(set.operands.end(), b.args.begin(), b.args.begin() + static_cast<std::ptrdiff_t>(b.num_consts));
  }
  for (std::size_t k = 0; k < bodies.size(); ++k) {
    Graph g = *bodies[k].graph;
    // g's inputs: [own extras (num_consts), operand leaves]; rebuild as [operands, all extras].
    const std::size_t own = bodies[k].num_consts;
    std::vector<Var> inputs(g.inputs.begin() + static_cast<std::ptrdiff_t>(own), g.inputs.end());
    for (std::size_t j = 0; j < bodies.size(); ++j) {
      if (j == k) {
        inputs.insert(inputs.end(), g.inputs.begin(), g.inputs.begin() + static_cast<std::ptrdiff_t>(own));
        continue;
      }
      for (std::size_t e = 0; e < bodies[j].num_consts; ++e) {
        const Array& a = set.operands[first_extra[j] + e];
        inputs.push_back(g.new_var({a.shape(), a.dtype()}));
      }
    }
    g.inputs = std::move(inputs);
    set.graphs.push_back(std::make_shared<const Graph>(std::move(g)));
  }
  return set;
}

/// Traces one branch on the operands: its module Arrays and captured values
/// first, then the operand leaves.
template <class F, class... Operands>
auto trace_branch(const F& f, const Operands&... operands) {
  auto traced = trace_call<F, Operands...>(f, operands...);
  std::vector<Array> args;
  if constexpr (tree_callable<F>) args = tree_leaves(f);
  const std::size_t own = args.size();
  for (const Array& a : call_leaves(nullptr, [] {}, operands...)) args.push_back(a);
  return std::pair{lift_body(std::move(traced.graph), std::move(args), own), std::move(traced.output)};
}

/// Names branches in messages: cond's are false_fn and true_fn.
inline std::string branch_label(const char* fn, std::size_t b) {
  if (std::string_view(fn) == "cond") return b ? "true_fn" : "false_fn";
  return "branch " + std::to_string(b);
}

template <class R>
void check_branch_output(const char* fn, std::size_t b, const R& first, const R& other) {
  const std::string pre = "eqx::" + std::string(fn) + ": " + branch_label(fn, b);
  if (!(TreeDef<R>(first) == TreeDef<R>(other)))
    throw TreeStructureError(pre + " returns a pytree whose structure or static fields differ from " +
                             branch_label(fn, 0) + "'s; every branch must return the same structure");
  auto a = tree_leaves_with_path(first), c = tree_leaves_with_path(other);
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].second.shape() != c[i].second.shape() || a[i].second.dtype() != c[i].second.dtype())
      throw ShapeError(pre + " returns " + AbstractArray{c[i].second.shape(), c[i].second.dtype()}.str() + " at " +
                       a[i].first.display() + " but " + branch_label(fn, 0) + " returns " +
                       AbstractArray{a[i].second.shape(), a[i].second.dtype()}.str() +
                       "; every branch must return the same shapes and dtypes");
}

/// switch_, reporting errors as `fn` (switch_ or cond).
template <class Branches, class... Operands>
auto switch_impl(const char* fn, const Array& index, const Branches& branches, const Operands&... operands) {
  return std::apply(
      [&](const auto&... fs) {
        using R = call_result_t<std::tuple_element_t<0, std::tuple<std::remove_cvref_t<decltype(fs)>...>>, Operands...>;
        static_assert((std::is_same_v<call_result_t<std::remove_cvref_t<decltype(fs)>, Operands...>, R> && ...),
                      "eqx::switch_ / eqx::cond: every branch must return the same type");
        std::vector<TracedBody> bodies;
        std::vector<R> outputs;
        (
            [&] {
              auto [body, out] = trace_branch(fs, operands...);
              bodies.push_back(std::move(body));
              outputs.push_back(std::move(out));
            }(),
            ...);
        for (std::size_t b = 1; b < outputs.size(); ++b) check_branch_output(fn, b, outputs[0], outputs[b]);
        BranchSet set = merge_branches(std::move(bodies), call_leaves(nullptr, [] {}, operands...));
        set.operands.insert(set.operands.begin(), astype(index, DType::int32));
        std::vector<Array> outs = eqx::bind(prim::cond, set.operands, Params{}.set("branches", std::move(set.graphs)));
        return TreeDef<R>(outputs[0]).unflatten(outs);
      },
      branches);
}
}  // namespace detail

/// Runs `branches[index](operands...)`, with the branch chosen at run time
/// (an index out of range is clamped, as in lax.switch). `branches` is a
/// std::tuple (or pair) of callables returning the same pytree type;
/// `index` is an integer scalar Array. Inside filter_vmap with a batched
/// index every branch runs and each example takes its own branch's result.
/// Usage: `Array y = eqx::switch_(k, std::tuple{relu_fn, tanh_fn, id_fn}, x);`
template <class Branches, class... Operands>
auto switch_(const Array& index, const Branches& branches, const Operands&... operands) {
  if (!index.has_value() || index.ndim() != 0 || !(is_integer(index.dtype()) || index.dtype() == DType::bool_))
    throw DTypeError("eqx::switch_: the index must be an integer (or bool) scalar Array, got " +
                     (index.has_value() ? AbstractArray{index.shape(), index.dtype()}.str() : std::string("None")));
  return detail::switch_impl("switch_", index, branches, operands...);
}

/// `true_fn(operands...)` if the scalar `pred` is true, else
/// `false_fn(operands...)`, chosen at run time (jax.lax.cond). Both must
/// return the same pytree type, shapes and dtypes.
/// Usage: `Array y = eqx::cond(x.sum() > 0, [](const Array& v) { return v; }, [](const Array& v) { return -v; }, x);`
template <class TrueFn, class FalseFn, class... Operands>
auto cond(const Array& pred, const TrueFn& true_fn, const FalseFn& false_fn, const Operands&... operands) {
  if (!pred.has_value() || pred.ndim() != 0)
    throw ShapeError("eqx::cond: the predicate must be a scalar Array, got " +
                     (pred.has_value() ? AbstractArray{pred.shape(), pred.dtype()}.str() : std::string("None")) +
                     "; reduce it first (eqx::any, eqx::all)");
  return detail::switch_impl("cond", astype(pred, DType::bool_), std::tie(false_fn, true_fn), operands...);
}

}  // namespace eqx
