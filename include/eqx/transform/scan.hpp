#pragma once
// eqx::scan: a loop over the leading axis of its inputs, carrying state (jax.lax.scan).
//
// A scan is one `scan` equation holding its body, so the graph does not
// grow with the length (no unrolling). Operands are the body's
// loop-invariant inputs (consts), the initial carry, and the stacked xs;
// outputs are the final carry and the stacked per-step ys. Its rules:
//   kernel   runs the body's compiled plan once per step, reading each x in
//            place and writing each y into its slot of the stacked output;
//   JVP      a scan of the body's JVP (tangents are more carry, xs and ys);
//   VJP      the body's VJP graph split in two (as JAX's partial
//            evaluation does): a forward scan computes the carries and
//            stacks, per step, the values the backward half needs
//            (residuals); a reverse scan then runs the backward half,
//            carrying the carry's cotangent and summing the consts'.
//   batching the body batched, with a carry that is batched if any step
//            makes it so (found by iterating to a fixed point).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/ad/autodiff.hpp"
#include "eqx/ad/batching.hpp"
#include "eqx/ir/dce.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/batching.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/subgraph.hpp"
#include "eqx/transform/trace_call.hpp"
#include "eqx/tree/flatten.hpp"

namespace eqx {

namespace detail {

/// The operand layout of a scan equation.
struct ScanLayout {
  std::size_t consts, carry, xs, ys;
  std::int64_t length;
  bool reverse;
  static ScanLayout from(const Params& p) {
    const Graph& body = *p.get<GraphRef>("jaxpr");
    const auto consts = static_cast<std::size_t>(p.get<std::int64_t>("num_consts"));
    const auto carry = static_cast<std::size_t>(p.get<std::int64_t>("num_carry"));
    return {consts, carry, body.inputs.size() - consts - carry, body.outputs.size() - carry,
            p.get<std::int64_t>("length"), p.get<bool>("reverse")};
  }
};

inline Params scan_params(GraphRef body, std::int64_t length, bool reverse, std::size_t consts, std::size_t carry) {
  return Params{}
      .set("jaxpr", std::move(body))
      .set("length", length)
      .set("reverse", reverse)
      .set("num_consts", static_cast<std::int64_t>(consts))
      .set("num_carry", static_cast<std::int64_t>(carry));
}

/// `t` with a leading axis of `n`: the stacked type of a per-step value.
inline AbstractArray stacked_type(AbstractArray t, std::int64_t n) {
  t.shape.insert(0, n);
  return t;
}

struct ScanPrim final : Primitive {
  std::string_view name() const override { return "scan"; }

  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray> in, const Params& p) const override {
    const Graph& body = *p.get<GraphRef>("jaxpr");
    const ScanLayout l = ScanLayout::from(p);
    const std::vector<AbstractArray> body_in = body.input_types(), body_out = body.output_types();
    if (in.size() != body_in.size())
      throw ValueError("eqx::scan: the body takes " + std::to_string(body_in.size()) + " inputs but the scan has " +
                       std::to_string(in.size()) + " operands");
    for (std::size_t i = 0; i < in.size(); ++i) {
      const bool x = i >= l.consts + l.carry;
      const AbstractArray want = x ? stacked_type(body_in[i], l.length) : body_in[i];
      if (in[i] != want)
        throw ShapeError("eqx::scan: operand " + std::to_string(i) + " is " + in[i].str() + " but the body needs " +
                         want.str() + (x ? " (one " + body_in[i].str() + " per step)" : ""));
    }
    std::vector<AbstractArray> out;
    for (std::size_t j = 0; j < body_out.size(); ++j) {
      if (j < l.carry && body_out[j] != body_in[l.consts + j])
        throw ShapeError("eqx::scan: carry " + std::to_string(j) + " goes into the body as " +
                         body_in[l.consts + j].str() + " but comes out as " + body_out[j].str() +
                         "; the body must return a carry of the type it takes");
      out.push_back(j < l.carry ? body_out[j] : stacked_type(body_out[j], l.length));
    }
    return out;
  }

  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::unique_ptr<PreparedKernel> prepare(const Params& p) const override;

  std::vector<Array> jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                         std::span<const Array> y, const Params& p) const override;
  std::vector<Array> vjp(const RuleOps& o, std::span<const Array> x, std::span<const Array>,
                         std::span<const Array> ct, const Params& p) const override {
    return vjp_bwd(o, x, vjp_fwd(o, x, p).saved, ct, p);
  }
  bool split_vjp() const override { return true; }
  ForwardWithResiduals vjp_fwd(const RuleOps& o, std::span<const Array> x, const Params& p) const override;
  std::vector<Array> vjp_bwd(const RuleOps& o, std::span<const Array> x, std::span<const Array> saved,
                             std::span<const Array> ct, const Params& p) const override;
  Batched batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const override;
};

}  // namespace detail

namespace prim {
inline const detail::ScanPrim scan;
}  // namespace prim

namespace detail {

#if EQX_KERNELS_HERE(CONTROL_FLOW)
/// scan's kernel with its body compiled once: built when a Plan is (or per
/// eager call). Step t reads each x at its slot and writes each y to its
/// slot; the carry alternates between two scratch buffers, the first step
/// reading the initial carry and the last writing the final one. The
/// pointer lists live in the scratch too, so a run allocates nothing.
class ScanKernel final : public PreparedKernel {
 public:
  explicit ScanKernel(const Params& p) : l_(ScanLayout::from(p)) {
    const GraphRef& body = p.get<GraphRef>("jaxpr");
    plan_ = compiled_body(body);
    for (auto& buffers : carry_at_)
      for (std::size_t j = 0; j < l_.carry; ++j) buffers.push_back(scratch_.reserve(bytes_of(body->types[body->outputs[j]])));
    args_at_ = scratch_.reserve(body->inputs.size() * sizeof(const void*));
    results_at_ = scratch_.reserve(body->outputs.size() * sizeof(void*));
  }
  std::size_t scratch_bytes() const override { return scratch_.bytes(); }

  void run(std::span<const View> in, std::span<const View> out, void* scratch) const override {
    auto* base = static_cast<std::byte*>(scratch);
    auto** args = reinterpret_cast<const void**>(base + args_at_);
    auto** results = reinterpret_cast<void**>(base + results_at_);
    for (std::size_t i = 0; i < l_.consts; ++i) args[i] = in[i].data;
    if (l_.length == 0)
      for (std::size_t j = 0; j < l_.carry; ++j) copy_bytes(out[j].data, in[l_.consts + j].data, out[j].bytes());
    for (std::int64_t step = 0; step < l_.length; ++step) {
      const std::int64_t t = l_.reverse ? l_.length - 1 - step : step;
      for (std::size_t j = 0; j < l_.carry; ++j) {
        args[l_.consts + j] = step == 0 ? in[l_.consts + j].data : base + carry_at_[step % 2][j];
        results[j] = step == l_.length - 1 ? out[j].data : base + carry_at_[(step + 1) % 2][j];
      }
      for (std::size_t k = 0; k < l_.xs; ++k)
        args[l_.consts + l_.carry + k] = step_pointer(in[l_.consts + l_.carry + k], t);
      for (std::size_t k = 0; k < l_.ys; ++k) results[l_.carry + k] = step_pointer(out[l_.carry + k], t);
      plan_->run_into(args, results);
    }
  }

 private:
  ScanLayout l_;
  std::shared_ptr<const Plan> plan_;
  ScratchLayout scratch_;
  std::vector<std::size_t> carry_at_[2];
  std::size_t args_at_ = 0, results_at_ = 0;
};

EQX_KERNEL_INLINE std::unique_ptr<PreparedKernel> ScanPrim::prepare(const Params& p) const {
  return std::make_unique<ScanKernel>(p);
}
EQX_KERNEL_INLINE void ScanPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  run_prepared(ScanKernel(p), in, out);
}

// The scan of the body's JVP. Which carries have a nonzero tangent is found
// by iterating: a carry's tangent is nonzero if its initial tangent is, or
// if the body makes it so from the nonzero tangents going in.
EQX_KERNEL_INLINE std::vector<Array> ScanPrim::jvp(const RuleOps& o, std::span<const Array> x, std::span<const Array> t,
                                                   std::span<const Array>, const Params& p) const {
  const ScanLayout l = ScanLayout::from(p);
  const GraphRef& body = p.get<GraphRef>("jaxpr");
  const std::vector<AbstractArray> types = body->input_types();
  const std::size_t n = x.size();
  std::vector<bool> nz(n);
  for (std::size_t i = 0; i < n; ++i) nz[i] = t[i].has_value() && is_floating(x[i].dtype());
  // Body inputs: [consts, their tangents, carry, its tangents, xs, their tangents] (nonzero tangents only).
  auto build = [&](std::vector<bool>& out_nz) {
    std::vector<AbstractArray> in_types;
    std::vector<std::size_t> primal_at(n), tangent_at(n, SIZE_MAX);
    auto group = [&](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to; ++i) primal_at[i] = in_types.size(), in_types.push_back(types[i]);
      for (std::size_t i = from; i < to; ++i)
        if (nz[i]) tangent_at[i] = in_types.size(), in_types.push_back(types[i]);
    };
    group(0, l.consts);
    group(l.consts, l.consts + l.carry);
    group(l.consts + l.carry, n);
    return trace_graph(in_types, [&](std::span<const Array> in) {
      std::vector<Array> primals(n), tangents(n);
      for (std::size_t i = 0; i < n; ++i) {
        primals[i] = in[primal_at[i]];
        if (nz[i]) tangents[i] = in[tangent_at[i]];
      }
      auto [outs, touts] = jvp_graph(*body, primals, tangents);
      out_nz.assign(outs.size(), false);
      std::vector<Array> result(outs.begin(), outs.begin() + static_cast<std::ptrdiff_t>(l.carry));
      for (std::size_t j = 0; j < l.carry; ++j) {
        out_nz[j] = touts[j].has_value() || nz[l.consts + j];
        if (nz[l.consts + j]) result.push_back(o.instantiate(touts[j], outs[j].shape(), outs[j].dtype()));
      }
      for (std::size_t j = l.carry; j < outs.size(); ++j) result.push_back(outs[j]);
      for (std::size_t j = l.carry; j < outs.size(); ++j)
        if ((out_nz[j] = touts[j].has_value())) result.push_back(touts[j]);
      return result;
    });
  };
  std::vector<bool> out_nz;
  GraphRef jvp_body = build(out_nz);
  for (bool changed = true; changed;) {  // at most one round per carry
    changed = false;
    for (std::size_t j = 0; j < l.carry; ++j)
      if (out_nz[j] && !nz[l.consts + j]) nz[l.consts + j] = changed = true;
    if (changed) jvp_body = build(out_nz);
  }
  std::vector<Array> operands;
  std::size_t consts = 0, carry = 0;
  auto group = [&](std::size_t from, std::size_t to, std::size_t* count) {
    for (std::size_t i = from; i < to; ++i) operands.push_back(x[i]);
    for (std::size_t i = from; i < to; ++i)
      if (nz[i]) operands.push_back(o.instantiate(t[i], x[i].shape(), x[i].dtype()));
    if (count) *count = operands.size();
  };
  group(0, l.consts, &consts);
  group(l.consts, l.consts + l.carry, nullptr);
  carry = operands.size() - consts;
  group(l.consts + l.carry, n, nullptr);
  std::vector<Array> outs = eqx::bind(*this, operands, scan_params(jvp_body, l.length, l.reverse, consts, carry));
  // Outputs: [carry, nonzero carry tangents, ys, nonzero y tangents].
  std::vector<Array> result(l.carry + l.ys);
  std::size_t next = l.carry;
  for (std::size_t j = 0; j < l.carry; ++j)
    if (nz[l.consts + j]) result[j] = outs[next++];
  next += l.ys;
  for (std::size_t j = l.carry; j < l.carry + l.ys; ++j)
    if (out_nz[j]) result[j] = outs[next++];
  return result;
}

/// The body's VJP as one graph, split into what runs forward (depends on
/// the carry or xs and not on a cotangent) and what runs backward.
struct ScanVjpSplit {
  GraphRef forward;   // [consts, carry, xs] -> [carry, ys, residuals]
  GraphRef backward;  // [consts, ct consts sum, ct carry, residuals, ct ys] -> [ct consts sum, ct carry, ct xs]
  std::vector<std::size_t> float_in, float_out;  // body inputs / outputs that have cotangents
};

inline ScanVjpSplit split_scan_vjp(const RuleOps& o, const Graph& body, const ScanLayout& l) {
  const std::vector<AbstractArray> in_types = body.input_types(), out_types = body.output_types();
  ScanVjpSplit s;
  for (std::size_t i = 0; i < in_types.size(); ++i)
    if (is_floating(in_types[i].dtype)) s.float_in.push_back(i);
  for (std::size_t j = 0; j < out_types.size(); ++j)
    if (is_floating(out_types[j].dtype)) s.float_out.push_back(j);
  // The joint graph: [inputs, output cotangents] -> [outputs, input cotangents].
  std::vector<AbstractArray> joint_types = in_types;
  for (std::size_t j : s.float_out) joint_types.push_back(out_types[j]);
  GraphRef joint_ref = trace_graph(joint_types, [&](std::span<const Array> in) {
    std::vector<Array> primals(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(in_types.size()));
    std::vector<Array> cts(out_types.size());
    for (std::size_t k = 0; k < s.float_out.size(); ++k) cts[s.float_out[k]] = in[in_types.size() + k];
    auto [outs, in_ct] = vjp_graph(body, primals, cts);
    for (std::size_t i : s.float_in) outs.push_back(o.instantiate(in_ct[i], in_types[i].shape, in_types[i].dtype));
    return outs;
  });
  const Graph& joint = *joint_ref;
  // Which values depend on a cotangent, and which on the step (carry or xs).
  std::vector<char> on_ct(joint.types.size(), 0), on_step(joint.types.size(), 0);
  for (std::size_t i = l.consts; i < in_types.size(); ++i) on_step[joint.inputs[i]] = 1;
  for (std::size_t i = in_types.size(); i < joint.inputs.size(); ++i) on_ct[joint.inputs[i]] = 1;
  std::vector<char> backward_eq(joint.equations.size(), 0), forward_eq(joint.equations.size(), 0);
  for (std::size_t e = 0; e < joint.equations.size(); ++e) {
    const Equation& eq = joint.equations[e];
    char ct = 0, step = 0;
    for (Var v : eq.inputs) ct |= on_ct[v], step |= on_step[v];
    for (Var v : eq.outputs) on_ct[v] = ct, on_step[v] = step;
    forward_eq[e] = !ct;
    backward_eq[e] = (ct || !step) && !eq.prim->effectful();  // loop-invariant work is redone where it is needed
  }
  // Residuals: step-dependent forward values that the backward half reads.
  std::vector<char> is_residual(joint.types.size(), 0);
  std::vector<Var> residuals;
  auto need = [&](Var v) {
    if (on_step[v] && !on_ct[v] && !is_residual[v]) is_residual[v] = 1, residuals.push_back(v);
  };
  for (std::size_t e = 0; e < joint.equations.size(); ++e)
    if (backward_eq[e])
      for (Var v : joint.equations[e].inputs) need(v);
  for (std::size_t k = out_types.size(); k < joint.outputs.size(); ++k) need(joint.outputs[k]);

  Graph fwd = joint;
  fwd.inputs.resize(in_types.size());
  fwd.outputs.resize(out_types.size());
  fwd.outputs.insert(fwd.outputs.end(), residuals.begin(), residuals.end());
  fwd.equations.clear();
  for (std::size_t e = 0; e < joint.equations.size(); ++e)
    if (forward_eq[e]) fwd.equations.push_back(joint.equations[e]);
  s.forward = std::make_shared<const Graph>(dce(std::move(fwd)));

  // The backward body re-binds the backward equations on its own inputs.
  std::vector<AbstractArray> bwd_types(in_types.begin(), in_types.begin() + static_cast<std::ptrdiff_t>(l.consts));
  std::vector<std::size_t> float_consts;
  for (std::size_t i : s.float_in)
    if (i < l.consts) float_consts.push_back(i), bwd_types.push_back(in_types[i]);
  std::vector<std::size_t> float_carry;
  for (std::size_t j : s.float_out)
    if (j < l.carry) float_carry.push_back(j), bwd_types.push_back(out_types[j]);
  for (Var v : residuals) bwd_types.push_back(joint.types[v]);
  for (std::size_t j : s.float_out)
    if (j >= l.carry) bwd_types.push_back(out_types[j]);
  s.backward = trace_graph(bwd_types, [&](std::span<const Array> in) {
    std::vector<Array> env(joint.types.size());
    for (std::size_t i = 0; i < joint.constvars.size(); ++i) env[joint.constvars[i]] = joint.consts[i];
    std::size_t next = 0;
    for (std::size_t i = 0; i < l.consts; ++i) env[joint.inputs[i]] = in[next++];
    std::vector<Array> sums(in.begin() + static_cast<std::ptrdiff_t>(next),
                            in.begin() + static_cast<std::ptrdiff_t>(next + float_consts.size()));
    next += float_consts.size();
    std::size_t ct_input = in_types.size();  // the joint graph's cotangent inputs, in float_out order
    for (std::size_t k = 0; k < float_carry.size(); ++k) env[joint.inputs[ct_input++]] = in[next++];
    for (Var v : residuals) env[v] = in[next++];
    while (ct_input < joint.inputs.size()) env[joint.inputs[ct_input++]] = in[next++];
    std::vector<Array> args;
    for (std::size_t e = 0; e < joint.equations.size(); ++e) {
      if (!backward_eq[e]) continue;
      const Equation& eq = joint.equations[e];
      args.clear();
      for (Var v : eq.inputs) args.push_back(env[v]);
      std::vector<Array> outs = eqx::bind(*eq.prim, args, eq.params);
      for (std::size_t k = 0; k < outs.size(); ++k) env[eq.outputs[k]] = std::move(outs[k]);
    }
    // Joint outputs after the body's: one cotangent per float input, in order.
    std::vector<Array> result;
    std::size_t ct_out = out_types.size();
    for (std::size_t k = 0; k < float_consts.size(); ++k) result.push_back(o.add(sums[k], env[joint.outputs[ct_out++]]));
    for (std::size_t i : s.float_in)
      if (i >= l.consts) result.push_back(env[joint.outputs[ct_out++]]);
    return result;
  });
  return s;
}

// The forward scan computes the outputs and stacks the residuals; the
// split is traced again for the backward half (trace-time work only).
EQX_KERNEL_INLINE Primitive::ForwardWithResiduals ScanPrim::vjp_fwd(const RuleOps& o, std::span<const Array> x,
                                                                    const Params& p) const {
  const ScanLayout l = ScanLayout::from(p);
  const ScanVjpSplit s = split_scan_vjp(o, *p.get<GraphRef>("jaxpr"), l);
  std::vector<Array> fwd = eqx::bind(*this, x, scan_params(s.forward, l.length, l.reverse, l.consts, l.carry));
  const auto outputs_end = fwd.begin() + static_cast<std::ptrdiff_t>(l.carry + l.ys);
  return {std::vector<Array>(fwd.begin(), outputs_end), std::vector<Array>(outputs_end, fwd.end())};
}

EQX_KERNEL_INLINE std::vector<Array> ScanPrim::vjp_bwd(const RuleOps& o, std::span<const Array> x, std::span<const Array> saved,
                                                       std::span<const Array> ct, const Params& p) const {
  const ScanLayout l = ScanLayout::from(p);
  const ScanVjpSplit s = split_scan_vjp(o, *p.get<GraphRef>("jaxpr"), l);
  const std::vector<AbstractArray> out_types = shape_rule(
      [&] {
        std::vector<AbstractArray> t;
        for (const Array& a : x) t.push_back({a.shape(), a.dtype()});
        return t;
      }(),
      p);
  std::vector<Array> operands(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(l.consts));
  std::size_t sums = 0, carry_cts = 0;
  for (std::size_t i : s.float_in)
    if (i < l.consts) operands.push_back(o.zeros_like(x[i])), ++sums;
  for (std::size_t j : s.float_out)
    if (j < l.carry) operands.push_back(o.instantiate(ct[j], out_types[j].shape, out_types[j].dtype)), ++carry_cts;
  operands.insert(operands.end(), saved.begin(), saved.end());
  for (std::size_t j : s.float_out)
    if (j >= l.carry) operands.push_back(o.instantiate(ct[j], out_types[j].shape, out_types[j].dtype));
  std::vector<Array> bwd =
      eqx::bind(*this, operands, scan_params(s.backward, l.length, !l.reverse, l.consts, sums + carry_cts));
  std::vector<Array> result(x.size());
  std::size_t next = 0;
  for (std::size_t i : s.float_in) result[i] = bwd[next++];
  return result;
}

// Consts and xs keep their batch axis first (xs: just after the scan axis).
// A carry is batched if its initial value is, or if the body makes it so.
EQX_KERNEL_INLINE Batched ScanPrim::batch(const RuleOps& o, std::span<const Array> x, BatchDims d, const Params& p) const {
  const ScanLayout l = ScanLayout::from(p);
  const Graph& body = *p.get<GraphRef>("jaxpr");
  const std::int64_t n = batch_size(x, d);
  std::vector<std::int64_t> in_dims(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) in_dims[i] = d[i] == not_mapped ? not_mapped : 0;
  std::vector<std::int64_t> out_dims;
  std::vector<bool> force(body.outputs.size(), false);
  GraphRef batched;
  for (;;) {
    for (std::size_t j = 0; j < l.carry; ++j) force[j] = in_dims[l.consts + j] == 0;
    batched = batch_subgraph(body, in_dims, n, force, out_dims);
    bool changed = false;
    for (std::size_t j = 0; j < l.carry; ++j)
      if (out_dims[j] == 0 && in_dims[l.consts + j] == not_mapped) in_dims[l.consts + j] = 0, changed = true;
    if (!changed) break;
  }
  std::vector<Array> operands(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (in_dims[i] == not_mapped) operands[i] = x[i];
    else if (i < l.consts + l.carry) operands[i] = o.batch_first(x[i], d[i], n);
    else operands[i] = d[i] == not_mapped ? o.moveaxis(o.batch_first(x[i], d[i], n), 0, 1) : o.moveaxis(x[i], d[i], 1);
  }
  Batched result{eqx::bind(*this, operands, Params(p).set("jaxpr", batched)), {}};
  for (std::size_t j = 0; j < out_dims.size(); ++j)
    result.dims.push_back(out_dims[j] == not_mapped ? not_mapped : (j < l.carry ? 0 : 1));
  return result;
}
#endif

/// Checks the carry a body returns has the structure and types of the
/// carry it takes, naming the first leaf that differs.
template <class Carry>
void check_carry(const char* fn, const Carry& in, const Carry& out) {
  if (!(TreeDef<Carry>(in) == TreeDef<Carry>(out)))
    throw TreeStructureError("eqx::" + std::string(fn) +
                             ": the body returns a carry whose structure or static fields differ from the carry it "
                             "takes; return a carry of the same structure");
  auto a = tree_leaves_with_path(in), b = tree_leaves_with_path(out);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Array &u = a[i].second, &v = b[i].second;
    if (u.shape() != v.shape() || u.dtype() != v.dtype())
      throw ShapeError("eqx::" + std::string(fn) + ": the carry at " + a[i].first.display() + " goes into the body as " +
                       AbstractArray{u.shape(), u.dtype()}.str() + " but comes out as " +
                       AbstractArray{v.shape(), v.dtype()}.str() + "; the body must return a carry of the type it takes");
  }
}

}  // namespace detail

/// Loops `f` over the leading axis of `xs`, threading a carry: for each t,
/// `{carry, y_t} = f(carry, x_t)`; returns `{final carry, ys}` with the
/// y_t stacked along a new leading axis. `f` takes `(const Carry&, const
/// Xs&)` (one step's slice of every Array leaf of `xs`) and returns a
/// `std::pair`/`std::tuple` of `{Carry, Y}`; carry and y are any pytrees.
/// With no Array in `xs` (e.g. `std::tuple<>{}`) give `length`. `reverse`
/// runs t from the end. The loop is one equation holding the body, however
/// long it runs, and it is differentiable in both modes and batchable.
/// Usage: `auto [h, hs] = eqx::scan([&](const Array& h, const Array& x) { return std::pair{cell(h, x), h}; }, h0, xs);`
template <class F, class Carry, class Xs>
auto scan(const F& f, const Carry& init, const Xs& xs, std::optional<std::int64_t> length = std::nullopt,
          bool reverse = false) {
  using Out = detail::call_result_t<F, Carry, Xs>;
  static_assert(std::tuple_size_v<Out> == 2, "eqx::scan: the body must return {carry, y} as a std::pair or std::tuple");
  using Y = std::remove_cvref_t<std::tuple_element_t<1, Out>>;
  static_assert(std::is_same_v<std::remove_cvref_t<std::tuple_element_t<0, Out>>, Carry>,
                "eqx::scan: the body must return a carry of the type it takes (the first element of {carry, y})");
  std::vector<Array> args;
  std::vector<AbstractArray> types;
  if constexpr (detail::tree_callable<F>)
    for (Array& a : tree_leaves(f)) types.push_back({a.shape(), a.dtype()}), args.push_back(std::move(a));
  const std::size_t module_arrays = args.size();
  for (Array& a : tree_leaves(init)) types.push_back({a.shape(), a.dtype()}), args.push_back(std::move(a));
  const std::size_t carry = args.size() - module_arrays;
  std::optional<std::int64_t> n = length;
  std::string n_source = length ? "length is " + std::to_string(*length) : "";
  for (auto& [path, a] : tree_leaves_with_path(xs)) {
    if (a.ndim() == 0)
      throw ShapeError("eqx::scan: xs" + path.str() + " is a scalar " + AbstractArray{a.shape(), a.dtype()}.str() +
                       "; scan slices the leading axis of every xs Array, so each needs at least one axis");
    if (n && *n != a.shape()[0])
      throw ShapeError("eqx::scan: " + n_source + " but xs" + path.str() + " " + AbstractArray{a.shape(), a.dtype()}.str() +
                       " has " + std::to_string(a.shape()[0]) + " along its leading axis; they must agree");
    if (!n) n = a.shape()[0], n_source = "xs" + path.str() + " has " + std::to_string(*n) + " steps";
    Shape step(a.shape().begin() + 1, a.shape().end());
    types.push_back({step, a.dtype()});
    args.push_back(a);
  }
  if (!n) throw ValueError("eqx::scan: xs has no Array to scan over, so the number of steps is unknown; pass length");
  auto traced = detail::trace_call_as<F, Carry, Xs>(types, f, init, xs);
  detail::check_carry("scan", init, std::get<0>(traced.output));
  detail::TracedBody body = detail::lift_body(std::move(traced.graph), std::move(args), module_arrays);
  std::vector<Array> outs =
      eqx::bind(prim::scan, body.args, detail::scan_params(body.graph, *n, reverse, body.num_consts, carry));
  std::vector<Array> carry_out(outs.begin(), outs.begin() + static_cast<std::ptrdiff_t>(carry));
  std::vector<Array> ys(outs.begin() + static_cast<std::ptrdiff_t>(carry), outs.end());
  return std::pair<Carry, Y>{TreeDef<Carry>(std::get<0>(traced.output)).unflatten(carry_out),
                             TreeDef<Y>(std::get<1>(traced.output)).unflatten(ys)};
}

}  // namespace eqx
