#pragma once
// eqx::while_loop and eqx::fori_loop (jax.lax.while_loop / fori_loop).
//
// A while loop is one `while` equation holding its condition and body.
// Operands: the condition's loop-invariant inputs, the body's, then the
// carry. Rules:
//   kernel   alternates the compiled condition and body on two carry buffers;
//   JVP      a while loop of the body's JVP (tangents are more carry);
//   VJP      none: the trip count is only known at run time, so there is
//            nothing to run backwards (as in JAX); the error says what to use;
//   batching a batched condition runs until every example is done, and a
//            finished example keeps its carry (selected per example).
// fori_loop with int bounds is a scan (reverse-differentiable); with Array
// bounds it is a while loop.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/batching.hpp"
#include "eqx/ir/eval.hpp"
#include "eqx/ops/creation.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/operand.hpp"
#include "eqx/ops/reductions.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/scan.hpp"
#include "eqx/transform/subgraph.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

struct WhileLayout {
  std::size_t cond_consts, body_consts, carry;
  static WhileLayout from(const Params& p) {
    const auto cc = static_cast<std::size_t>(p.get<std::int64_t>("cond_nconsts"));
    const auto bc = static_cast<std::size_t>(p.get<std::int64_t>("body_nconsts"));
    return {cc, bc, p.get<GraphRef>("body_jaxpr")->inputs.size() - bc};
  }
};

inline Params while_params(GraphRef cond, GraphRef body, std::size_t cond_consts, std::size_t body_consts) {
  return Params{}
      .set("cond_jaxpr", std::move(cond))
      .set("body_jaxpr", std::move(body))
      .set("cond_nconsts", static_cast<std::int64_t>(cond_consts))
      .set("body_nconsts", static_cast<std::int64_t>(body_consts));
}

struct WhilePrim final : Primitive {
  std::string_view name() const override { return "while"; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const WhileLayout l = WhileLayout::from(p);
    const Graph &cond = *p.get<GraphRef>("cond_jaxpr"), &body = *p.get<GraphRef>("body_jaxpr");
    if (in.size() != l.cond_consts + l.body_consts + l.carry)
      throw ValueError("eqx::while_loop: " + std::to_string(in.size()) + " operands for " +
                       std::to_string(l.cond_consts + l.body_consts + l.carry) + " inputs");
    const std::vector<AbstractArray> carry(in.begin() + static_cast<std::ptrdiff_t>(l.cond_consts + l.body_consts), in.end());
    if (body.output_types() != carry)
      throw ShapeError("eqx::while_loop: the body takes a carry (" + types_str(carry) + ") but returns (" +
                       types_str(body.output_types()) + "); it must return a carry of the type it takes");
    if (cond.output_types() != std::vector<AbstractArray>{{Shape{}, DType::bool_}})
      throw DTypeError("eqx::while_loop: the condition must return one bool scalar, got (" +
                       types_str(cond.output_types()) + ")");
    return carry;
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::unique_ptr<PreparedKernel> prepare(const Params& p) const override;

  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps&, std::span<const Array>, std::span<const Array>, std::span<const Array>,
                         const Params&) const override {
    throw ValueError(
        "eqx::while_loop: reverse-mode differentiation (filter_grad, filter_vjp) of a while loop is not supported, "
        "as in JAX: its number of iterations is only known at run time, so there are no stored steps to run "
        "backwards. Use eqx::fori_loop with int bounds or eqx::scan (a fixed number of steps), or forward mode "
        "(filter_jvp, filter_jacfwd)");
  }
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

}  // namespace detail

namespace prim {
inline const detail::WhilePrim while_loop;
}  // namespace prim

namespace detail {

#if EQX_KERNELS_HERE(CONTROL_FLOW)
/// while_loop's kernel with its condition and body compiled once. The
/// carry alternates between two scratch buffers; the pointer lists live in
/// the scratch too, so a run allocates nothing.
class WhileKernel final : public PreparedKernel {
 public:
  explicit WhileKernel(const Params& p) : l_(WhileLayout::from(p)) {
    cond_ = compiled_body(p.get<GraphRef>("cond_jaxpr"));
    const GraphRef& body = p.get<GraphRef>("body_jaxpr");
    body_ = compiled_body(body);
    for (auto& buffers : carry_at_)
      for (std::size_t j = 0; j < l_.carry; ++j) buffers.push_back(scratch_.reserve(bytes_of(body->types[body->outputs[j]])));
    cond_args_at_ = scratch_.reserve((l_.cond_consts + l_.carry) * sizeof(const void*));
    body_args_at_ = scratch_.reserve((l_.body_consts + l_.carry) * sizeof(const void*));
    body_out_at_ = scratch_.reserve(l_.carry * sizeof(void*));
  }
  std::size_t scratch_bytes() const override { return scratch_.bytes(); }

  void run(std::span<const View> in, std::span<const View> out, void* scratch) const override {
    auto* base = static_cast<std::byte*>(scratch);
    auto** cond_args = reinterpret_cast<const void**>(base + cond_args_at_);
    auto** body_args = reinterpret_cast<const void**>(base + body_args_at_);
    auto** body_out = reinterpret_cast<void**>(base + body_out_at_);
    const std::size_t first_carry = l_.cond_consts + l_.body_consts;
    for (std::size_t j = 0; j < l_.carry; ++j) copy_bytes(base + carry_at_[0][j], in[first_carry + j].data, out[j].bytes());
    for (std::size_t i = 0; i < l_.cond_consts; ++i) cond_args[i] = in[i].data;
    for (std::size_t i = 0; i < l_.body_consts; ++i) body_args[i] = in[l_.cond_consts + i].data;
    int cur = 0;
    for (;;) {
      for (std::size_t j = 0; j < l_.carry; ++j)
        cond_args[l_.cond_consts + j] = body_args[l_.body_consts + j] = base + carry_at_[cur][j];
      bool go = false;
      void* pred = &go;
      cond_->run_into(cond_args, &pred);
      if (!go) break;
      for (std::size_t j = 0; j < l_.carry; ++j) body_out[j] = base + carry_at_[1 - cur][j];
      body_->run_into(body_args, body_out);
      cur = 1 - cur;
    }
    for (std::size_t j = 0; j < l_.carry; ++j) copy_bytes(out[j].data, base + carry_at_[cur][j], out[j].bytes());
  }

 private:
  WhileLayout l_;
  std::shared_ptr<const Plan> cond_, body_;
  ScratchLayout scratch_;
  std::vector<std::size_t> carry_at_[2];
  std::size_t cond_args_at_ = 0, body_args_at_ = 0, body_out_at_ = 0;
};

EQX_KERNEL_INLINE std::unique_ptr<PreparedKernel> WhilePrim::prepare(const Params& p) const {
  return std::make_unique<WhileKernel>(p);
}
EQX_KERNEL_INLINE void WhilePrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  run_prepared(WhileKernel(p), in, out);
}

/// `g` taking `extra` more inputs (appended) that it ignores.
inline GraphRef with_ignored_inputs(const Graph& g, std::span<const AbstractArray> extra) {
  Graph out = g;
  for (const AbstractArray& t : extra) out.inputs.push_back(out.new_var(t));
  return std::make_shared<const Graph>(std::move(out));
}

// Carries with a nonzero tangent are found by iterating, as for scan.
EQX_KERNEL_INLINE std::vector<Array> WhilePrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                    std::span<const Array>, const Params& p) const {
  const WhileLayout l = WhileLayout::from(p);
  const Graph& body = *p.get<GraphRef>("body_jaxpr");
  const std::size_t first_carry = l.cond_consts + l.body_consts;
  std::vector<bool> nz(x.size());
  for (std::size_t i = l.cond_consts; i < x.size(); ++i) nz[i] = t[i].has_value() && is_floating(x[i].dtype());
  std::vector<AbstractArray> carry_tangent_types;
  auto build = [&](std::vector<bool>& out_nz) {
    std::vector<AbstractArray> types;
    std::vector<std::size_t> at(x.size(), SIZE_MAX);
    auto group = [&](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to; ++i) types.push_back({x[i].shape(), x[i].dtype()});
      for (std::size_t i = from; i < to; ++i)
        if (nz[i]) at[i] = types.size(), types.push_back({x[i].shape(), x[i].dtype()});
    };
    group(l.cond_consts, first_carry);
    group(first_carry, x.size());
    return trace_graph(types, [&](std::span<const Array> in) {
      const std::size_t carry_at = (first_carry - l.cond_consts) + [&] {
        std::size_t k = 0;
        for (std::size_t i = l.cond_consts; i < first_carry; ++i) k += nz[i];
        return k;
      }();
      std::vector<Array> primals, tangents;
      for (std::size_t i = l.cond_consts; i < first_carry; ++i) primals.push_back(in[i - l.cond_consts]);
      for (std::size_t j = 0; j < l.carry; ++j) primals.push_back(in[carry_at + j]);
      for (std::size_t i = l.cond_consts; i < x.size(); ++i) tangents.push_back(nz[i] ? in[at[i]] : Array{});
      auto [outs, touts] = jvp_graph(body, primals, tangents);
      out_nz.assign(l.carry, false);
      for (std::size_t j = 0; j < l.carry; ++j) {
        out_nz[j] = touts[j].has_value();
        if (nz[first_carry + j]) outs.push_back(o.instantiate(touts[j], outs[j].shape(), outs[j].dtype()));
      }
      return outs;
    });
  };
  std::vector<bool> out_nz;
  GraphRef jvp_body = build(out_nz);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t j = 0; j < l.carry; ++j)
      if (out_nz[j] && !nz[first_carry + j]) nz[first_carry + j] = changed = true;
    if (changed) jvp_body = build(out_nz);
  }
  for (std::size_t j = 0; j < l.carry; ++j)
    if (nz[first_carry + j]) carry_tangent_types.push_back({x[first_carry + j].shape(), x[first_carry + j].dtype()});
  GraphRef cond = with_ignored_inputs(*p.get<GraphRef>("cond_jaxpr"), carry_tangent_types);
  std::vector<Array> operands(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(first_carry));
  std::size_t body_consts = l.body_consts;
  for (std::size_t i = l.cond_consts; i < first_carry; ++i)
    if (nz[i]) operands.push_back(t[i]), ++body_consts;
  for (std::size_t i = first_carry; i < x.size(); ++i) operands.push_back(x[i]);
  for (std::size_t i = first_carry; i < x.size(); ++i)
    if (nz[i]) operands.push_back(o.instantiate(t[i], x[i].shape(), x[i].dtype()));
  std::vector<Array> outs = eqx::bind(*this, operands, while_params(cond, jvp_body, l.cond_consts, body_consts));
  std::vector<Array> result(l.carry);
  std::size_t next = l.carry;
  for (std::size_t j = 0; j < l.carry; ++j)
    if (nz[first_carry + j]) result[j] = outs[next++];
  return result;
}

EQX_KERNEL_INLINE Batched WhilePrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const {
  const WhileLayout l = WhileLayout::from(p);
  const Graph &cond = *p.get<GraphRef>("cond_jaxpr"), &body = *p.get<GraphRef>("body_jaxpr");
  const std::size_t first_carry = l.cond_consts + l.body_consts;
  const std::int64_t n = batch_size(x, d);
  std::vector<std::int64_t> dims(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) dims[i] = d[i] == not_mapped ? not_mapped : 0;
  auto cond_dims = [&] {
    std::vector<std::int64_t> v(dims.begin(), dims.begin() + static_cast<std::ptrdiff_t>(l.cond_consts));
    v.insert(v.end(), dims.begin() + static_cast<std::ptrdiff_t>(first_carry), dims.end());
    return v;
  };
  std::vector<std::int64_t> out_dims;
  std::vector<bool> force(l.carry);
  GraphRef batched_body, batched_cond;
  for (;;) {  // a carry is batched if its initial value is or if the body makes it so
    for (std::size_t j = 0; j < l.carry; ++j) force[j] = dims[first_carry + j] == 0;
    batched_body = batch_subgraph(body, std::span(dims).subspan(l.cond_consts), n, force, out_dims);
    bool changed = false;
    for (std::size_t j = 0; j < l.carry; ++j)
      if (out_dims[j] == 0 && dims[first_carry + j] == not_mapped) dims[first_carry + j] = 0, changed = true;
    std::vector<std::int64_t> pred_dim;
    if (!changed) {
      batched_cond = batch_subgraph(cond, cond_dims(), n, {}, pred_dim);
      if (pred_dim[0] == not_mapped) break;
      // A batched condition: every carry is batched, since examples stop at different steps.
      for (std::size_t j = 0; j < l.carry; ++j)
        if (dims[first_carry + j] == not_mapped) dims[first_carry + j] = 0, changed = true;
      if (!changed) break;
    }
  }
  std::vector<Array> operands(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    operands[i] = dims[i] == not_mapped ? x[i] : o.batch_first(x[i], d[i], n);
  std::vector<std::int64_t> pred_dim;
  batched_cond = batch_subgraph(cond, cond_dims(), n, {}, pred_dim);
  if (pred_dim[0] == not_mapped)
    return {eqx::bind(*this, operands, Params(p).set("cond_jaxpr", batched_cond).set("body_jaxpr", batched_body)),
            std::vector<std::int64_t>(dims.begin() + static_cast<std::ptrdiff_t>(first_carry), dims.end())};
  // Loop while any example's condition holds; the body leaves finished examples as they are.
  std::vector<AbstractArray> cond_types = batched_cond->input_types(), body_types;
  GraphRef any_cond = trace_graph(cond_types, [&](std::span<const Array> in) {
    return std::vector<Array>{any(eval_graph(*batched_cond, in)[0])};
  });
  for (std::size_t i = 0; i < first_carry; ++i) body_types.push_back({operands[i].shape(), operands[i].dtype()});
  for (std::size_t j = 0; j < l.carry; ++j) body_types.push_back(batched_body->types[batched_body->outputs[j]]);
  GraphRef masked_body = trace_graph(body_types, [&](std::span<const Array> in) {
    std::vector<Array> cond_in(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(l.cond_consts));
    cond_in.insert(cond_in.end(), in.begin() + static_cast<std::ptrdiff_t>(first_carry), in.end());
    Array go = eval_graph(*batched_cond, cond_in)[0];  // [n]
    std::vector<Array> carry(in.begin() + static_cast<std::ptrdiff_t>(first_carry), in.end());
    std::vector<Array> body_in(in.begin() + static_cast<std::ptrdiff_t>(l.cond_consts), in.end());
    std::vector<Array> next = eval_graph(*batched_body, body_in);
    for (std::size_t j = 0; j < l.carry; ++j) {
      Shape mask = Shape::filled(next[j].ndim(), 1);
      mask[0] = n;
      next[j] = where(reshape(go, mask), next[j], carry[j]);
    }
    return next;
  });
  // The masked body reads the condition's consts too: operands [cond consts, cond consts, body consts, carry].
  operands.insert(operands.begin() + static_cast<std::ptrdiff_t>(l.cond_consts), operands.begin(),
                  operands.begin() + static_cast<std::ptrdiff_t>(l.cond_consts));
  return {eqx::bind(*this, operands, while_params(any_cond, masked_body, l.cond_consts, first_carry)),
          std::vector<std::int64_t>(l.carry, 0)};
}
#endif

}  // namespace detail

/// Runs `value = body_fn(value)` while `cond_fn(value)` (a bool scalar
/// Array) is true, and returns the last value (jax.lax.while_loop). The
/// value is any pytree; body_fn must return the same structure, shapes and
/// dtypes. Forward-mode differentiable and batchable; reverse mode throws
/// (use fori_loop with int bounds, or scan).
/// Usage: `Array x = eqx::while_loop([](const Array& x) { return x < 100.0f; }, [](const Array& x) { return x * 2.0f; }, x0);`
template <class CondFn, class BodyFn, class T>
T while_loop(const CondFn& cond_fn, const BodyFn& body_fn, const T& init) {
  static_assert(std::is_same_v<detail::call_result_t<BodyFn, T>, T>,
                "eqx::while_loop: body_fn must return the type it takes");
  auto cond_traced = detail::trace_call<CondFn, T>(cond_fn, init);
  const Array& pred = cond_traced.output;
  if (pred.ndim() != 0 || pred.dtype() != DType::bool_)
    throw DTypeError("eqx::while_loop: cond_fn must return a bool scalar Array, got " +
                     AbstractArray{pred.shape(), pred.dtype()}.str() + "; compare or reduce it (x < n, eqx::any)");
  auto body_traced = detail::trace_call<BodyFn, T>(body_fn, init);
  detail::check_carry("while_loop", init, body_traced.output);
  std::vector<Array> carry = tree_leaves(init), cond_args, body_args;
  if constexpr (detail::tree_callable<CondFn>) cond_args = tree_leaves(cond_fn);
  if constexpr (detail::tree_callable<BodyFn>) body_args = tree_leaves(body_fn);
  const std::size_t cond_own = cond_args.size(), body_own = body_args.size();
  cond_args.insert(cond_args.end(), carry.begin(), carry.end());
  body_args.insert(body_args.end(), carry.begin(), carry.end());
  detail::TracedBody c = detail::lift_body(std::move(cond_traced.graph), std::move(cond_args), cond_own);
  detail::TracedBody b = detail::lift_body(std::move(body_traced.graph), std::move(body_args), body_own);
  std::vector<Array> operands(c.args.begin(), c.args.begin() + static_cast<std::ptrdiff_t>(c.num_consts));
  operands.insert(operands.end(), b.args.begin(), b.args.begin() + static_cast<std::ptrdiff_t>(b.num_consts));
  operands.insert(operands.end(), carry.begin(), carry.end());
  std::vector<Array> outs = eqx::bind(prim::while_loop, operands,
                                      detail::while_params(c.graph, b.graph, c.num_consts, b.num_consts));
  return TreeDef<T>(body_traced.output).unflatten(outs);
}

/// `value = body(i, value)` for i = lower, ..., upper - 1, where i is an
/// int32 scalar Array (jax.lax.fori_loop). With int bounds the loop is a
/// scan, so it is reverse-differentiable; with Array bounds it is a while
/// loop (bounds known only at run time; forward mode only).
/// Usage: `Array x = eqx::fori_loop(0, 10, [](const Array& i, const Array& x) { return x + i; }, x0);`
template <class BodyFn, class T>
T fori_loop(std::int64_t lower, std::int64_t upper, const BodyFn& body, const T& init) {
  using Carry = std::pair<Array, T>;
  auto [carry, unused] = scan(
      [&](const Carry& c, const std::tuple<>&) {
        return std::pair{Carry{c.first + std::int32_t{1}, body(c.first, c.second)}, std::tuple<>{}};
      },
      Carry{array(static_cast<std::int32_t>(lower)), init}, std::tuple<>{}, std::max<std::int64_t>(upper - lower, 0));
  return carry.second;
}

template <class BodyFn, class T>
T fori_loop(const Array& lower, const Array& upper, const BodyFn& body, const T& init) {
  using Carry = std::tuple<Array, Array, T>;
  Carry out = while_loop([](const Carry& c) { return std::get<0>(c) < std::get<1>(c); },
                         [&](const Carry& c) {
                           return Carry{std::get<0>(c) + std::int32_t{1}, std::get<1>(c), body(std::get<0>(c), std::get<2>(c))};
                         },
                         Carry{astype(lower, DType::int32), astype(upper, DType::int32), init});
  return std::get<2>(out);
}

}  // namespace eqx
