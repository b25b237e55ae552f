#pragma once
// Plan: a Graph compiled for repeated execution.
//
// The equations become a flat list of kernel calls on buffers. Every
// intermediate value gets a fixed offset in one arena, assigned by liveness
// (two values share bytes when their lifetimes do not overlap), so running a
// plan allocates nothing but its outputs: each call borrows an execution
// state (arena + pointer table) from a small pool and returns it, which also
// makes a Plan safe to run from several threads at once.
//
// Donated inputs (eqx::filter_jit's donate): an output computed by an
// instruction may be written into an input's buffer instead of a new one
// when the types match and nothing reads the input after that: the input's
// last reader is an earlier instruction, or the same instruction when it is
// elementwise (one result, or eqx::elementwise_kernel's one loop), or a
// fused region that reads the input no later than it writes the output:
// each element is read before its result lands on it. Which inputs can host which outputs is found once, here;
// a call says which inputs it consumes.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/config.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ir/fuse.hpp"
#include "eqx/ir/graph.hpp"

namespace eqx {

/// What a Plan needs in memory.
struct MemoryStats {
  std::size_t arena_bytes = 0;         ///< one arena holds every intermediate (per concurrent call)
  std::size_t intermediate_bytes = 0;  ///< what the intermediates would take without reuse
  std::size_t num_intermediates = 0;
  std::size_t constant_bytes = 0;      ///< held by the plan's constants
  std::size_t num_instructions = 0;
  std::size_t scratch_bytes = 0;       ///< lent to prepared kernels (loops' carries) per concurrent call
};

/// A compiled graph. Usage:
///   eqx::Plan plan(eqx::optimize(graph));
///   std::vector<eqx::Array> out = plan.run(std::span<const eqx::Array>(inputs));
class Plan {
 public:
  /// Compiles `graph`, whose constants must be concrete. Run the passes
  /// first (eqx::optimize) to get fused, allocation-light code.
  explicit Plan(Graph graph);

  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  const Graph& graph() const { return graph_; }
  MemoryStats memory_stats() const { return stats_; }

  /// Runs the plan on one Array per graph input (types as the graph's
  /// inputs; not checked here: the jit cache key guarantees them).
  /// `consumed`, when given, names per input what its buffer is donated to
  /// (null: not donated): those inputs' handles become stale
  /// (Array::is_donated) and computed outputs may be written into them.
  std::vector<Array> run(std::span<const Array* const> inputs, std::span<const char* const> consumed = {}) const;

  /// Runs the plan reading input i at `inputs[i]` and writing output i to
  /// `outputs[i]` (buffers of the graph's types that do not overlap the
  /// inputs): what control-flow kernels call on every iteration, with no
  /// allocation.
  void run_into(const void* const* inputs, void* const* outputs) const;

  /// run() on Arrays given by value.
  std::vector<Array> run(std::span<const Array> inputs) const {
    std::vector<const Array*> ptrs;
    for (const Array& a : inputs) ptrs.push_back(&a);
    return run(std::span<const Array* const>(ptrs));
  }

 private:
  struct Slot {
    enum Kind : std::uint8_t { unassigned, input, constant, output, arena } kind = unassigned;
    std::uint32_t index = 0;
    std::size_t offset = 0;
  };
  struct OutputSource {
    Slot::Kind kind;
    std::uint32_t index;  // input, constant, or first output position
  };
  struct Instr {
    const Primitive* prim;
    const Params* params;
    const PreparedKernel* prepared;  // or null: call prim->kernel
    std::size_t scratch_offset;      // of its scratch in ExecState::scratch
    std::uint32_t first_operand;
    std::uint16_t num_in, num_out;
  };
  /// What one call needs besides the plan: borrowed from a pool.
  struct ExecState {
    std::unique_ptr<detail::Storage> arena;
    std::unique_ptr<detail::Storage> scratch;
    std::vector<void*> ptrs;
    std::vector<detail::View> views;
    std::vector<std::uint8_t> taken;  // per input: its buffer hosts an output of this call
  };

  /// Points every value of `st` at its buffer: input i at `input(i)`,
  /// output i at `output(i)`, constants and intermediates at their own.
  template <class Input, class Output>
  void point_slots(ExecState& st, Input input, Output output) const {
    void** ptr = st.ptrs.data();
    auto* base = static_cast<std::byte*>(st.arena ? st.arena->data() : nullptr);
    for (Var v : assigned_) {
      const Slot& s = slots_[v];
      switch (s.kind) {
        case Slot::input: ptr[v] = const_cast<void*>(input(s.index)); break;
        case Slot::constant: ptr[v] = const_cast<void*>(graph_.consts[s.index].raw_data()); break;
        case Slot::output: ptr[v] = output(s.index); break;
        case Slot::arena: ptr[v] = base + s.offset; break;
        default: break;
      }
    }
  }

  /// The first consumed input, not yet taken by this call, that output i may
  /// be written into; marks it taken.
  const Array* take_host(ExecState& st, std::size_t i, std::span<const Array* const> inputs,
                         std::span<const char* const> consumed) const {
    if (hosts_.empty()) return nullptr;
    for (std::uint32_t j : hosts_[i])
      if (consumed[j] && !st.taken[j]) {
        st.taken[j] = 1;
        return inputs[j];
      }
    return nullptr;
  }

  /// Donates the consumed inputs' buffers, and gives the outputs that hold
  /// one (written into it, or an input passed through) a fresh handle of
  /// the output's type.
  void hand_over(ExecState& st, std::span<const Array* const> inputs, std::span<const char* const> consumed,
                 std::vector<Array>& result) const {
    for (std::size_t j = 0; j < inputs.size(); ++j)
      if (consumed[j]) detail::ArrayAccess::donate(*inputs[j], consumed[j]);
    std::fill(st.taken.begin(), st.taken.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < result.size(); ++i)
      if (result[i].is_donated()) {
        const AbstractArray& t = graph_.types[graph_.outputs[i]];
        result[i] = detail::ArrayAccess::take_over(result[i], t.shape, t.dtype);
      }
  }

  /// Runs every instruction on the value pointers in `st.ptrs`.
  void execute(ExecState& st) const {
    void* const* ptr = st.ptrs.data();
    detail::View* views = st.views.data();
    auto* scratch = static_cast<std::byte*>(st.scratch ? st.scratch->data() : nullptr);
    for (const Instr& in : instrs_) {
      const std::size_t n = in.num_in + in.num_out;
      for (std::size_t j = 0; j < n; ++j) {
        const Var v = operands_[in.first_operand + j];
        views[j] = detail::View{ptr[v], &graph_.types[v].shape, graph_.types[v].dtype};
      }
      std::span<const detail::View> ins(views, in.num_in), outs(views + in.num_in, in.num_out);
      if (in.prepared) in.prepared->run(ins, outs, scratch ? scratch + in.scratch_offset : nullptr);
      else in.prim->kernel(ins, outs, *in.params);
    }
  }

  /// Greedy offset assignment, largest buffers first: each gets the lowest
  /// 64-byte-aligned offset not used by a buffer alive at the same time.
  void assign_arena(const std::vector<std::size_t>& first, const std::vector<std::size_t>& last);

  /// Fills hosts_: per output, the inputs whose buffer it may be written into.
  void find_hosts(const std::vector<std::size_t>& writer, const std::vector<std::ptrdiff_t>& last_read);

  std::unique_ptr<ExecState> acquire() const {
    if (ExecState* spare = spare_.exchange(nullptr, std::memory_order_acquire)) return std::unique_ptr<ExecState>(spare);
    {
      std::lock_guard<std::mutex> lock(pool_mutex_);
      if (!pool_.empty()) {
        std::unique_ptr<ExecState> st = std::move(pool_.back());
        pool_.pop_back();
        return st;
      }
    }
    auto st = std::make_unique<ExecState>();
    if (stats_.arena_bytes) st->arena = std::make_unique<detail::Storage>(stats_.arena_bytes);
    if (stats_.scratch_bytes) st->scratch = std::make_unique<detail::Storage>(stats_.scratch_bytes);
    st->ptrs.resize(slots_.size());
    st->views.resize(max_operands_);
    if (!hosts_.empty()) st->taken.resize(graph_.inputs.size());
    return st;
  }
  void release(std::unique_ptr<ExecState> st) const {
    ExecState* empty = nullptr;
    if (spare_.compare_exchange_strong(empty, st.get(), std::memory_order_release, std::memory_order_relaxed)) {
      st.release();  // now owned by spare_
      return;
    }
    std::lock_guard<std::mutex> lock(pool_mutex_);
    pool_.push_back(std::move(st));  // capacity kept from earlier pops: no allocation
  }

  Graph graph_;
  std::vector<Slot> slots_;
  std::vector<Var> assigned_;  // the values with a buffer (fused regions' inner values have none)
  std::vector<Instr> instrs_;
  std::vector<Var> operands_;
  std::vector<OutputSource> output_sources_;
  std::vector<std::vector<std::uint32_t>> hosts_;  // per output position; empty when no input can host any
  std::vector<std::unique_ptr<PreparedKernel>> prepared_;
  std::size_t max_operands_ = 0;
  MemoryStats stats_;
  // One state is kept outside the mutex-guarded pool and taken with one
  // atomic exchange: the common case of one caller at a time takes no lock.
  mutable std::atomic<ExecState*> spare_{nullptr};
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<ExecState>> pool_;
};

#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Plan::~Plan() { delete spare_.load(); }

EQX_KERNEL_INLINE std::vector<Array> Plan::run(std::span<const Array* const> inputs,
                                               std::span<const char* const> consumed) const {
  std::unique_ptr<ExecState> st = acquire();
  // Outputs first: computed ones are allocated here (or are a consumed
  // input's buffer, for now through that input's handle) and written in place.
  std::vector<Array> result;
  result.reserve(graph_.outputs.size());
  for (const OutputSource& o : output_sources_) {
    switch (o.kind) {
      case Slot::input: result.push_back(*inputs[o.index]); break;
      case Slot::constant: result.push_back(graph_.consts[o.index]); break;
      default: {
        const std::size_t i = result.size();
        if (o.index != i) {
          result.emplace_back();
        } else if (const Array* host = consumed.empty() ? nullptr : take_host(*st, i, inputs, consumed)) {
          result.push_back(*host);
        } else {
          const AbstractArray& t = graph_.types[graph_.outputs[i]];
          result.push_back(detail::ArrayAccess::allocate(t.shape, t.dtype));
        }
      }
    }
  }
  point_slots(
      *st, [&](std::size_t i) { return inputs[i]->raw_data(); },  // raw_data: throws on a stale handle
      [&](std::size_t i) { return detail::ArrayAccess::mutable_data(result[i]); });
  if (!consumed.empty()) hand_over(*st, inputs, consumed, result);
  execute(*st);
  release(std::move(st));
  for (std::size_t i = 0; i < result.size(); ++i)  // repeated outputs share the first one's Array
    if (output_sources_[i].kind == Slot::output && output_sources_[i].index != i)
      result[i] = result[output_sources_[i].index];
  return result;
}

EQX_KERNEL_INLINE void Plan::run_into(const void* const* inputs, void* const* outputs) const {
  std::unique_ptr<ExecState> st = acquire();
  point_slots(*st, [&](std::size_t i) { return inputs[i]; }, [&](std::size_t i) { return outputs[i]; });
  execute(*st);
  release(std::move(st));
  // Outputs that are inputs, constants or repeats were not written by an instruction.
  for (std::size_t i = 0; i < output_sources_.size(); ++i) {
    const OutputSource& o = output_sources_[i];
    const AbstractArray& t = graph_.types[graph_.outputs[i]];
    const std::size_t bytes = static_cast<std::size_t>(t.shape.numel()) * itemsize(t.dtype);
    if (o.kind == Slot::input) detail::copy_bytes(outputs[i], inputs[o.index], bytes);
    else if (o.kind == Slot::constant) detail::copy_bytes(outputs[i], graph_.consts[o.index].raw_data(), bytes);
    else if (o.index != i) detail::copy_bytes(outputs[i], outputs[o.index], bytes);
  }
}

EQX_KERNEL_INLINE Plan::Plan(Graph graph) : graph_(std::move(graph)) {
  const Graph& g = graph_;
  slots_.assign(g.types.size(), Slot{});
  for (std::size_t i = 0; i < g.inputs.size(); ++i) slots_[g.inputs[i]] = {Slot::input, static_cast<std::uint32_t>(i), 0};
  for (std::size_t i = 0; i < g.consts.size(); ++i) {
    if (g.consts[i].is_abstract())
      throw TraceError("eqx::Plan: the graph captures a value of an enclosing trace; it can only be evaluated "
                       "there (eqx::eval_graph), not compiled");
    slots_[g.constvars[i]] = {Slot::constant, static_cast<std::uint32_t>(i), 0};
    stats_.constant_bytes += static_cast<std::size_t>(g.consts[i].size()) * itemsize(g.consts[i].dtype());
  }
  // Outputs computed by an instruction get a fresh Array per call, made
  // at the first position where the value is an output.
  for (std::size_t i = 0; i < g.outputs.size(); ++i) {
    Slot& s = slots_[g.outputs[i]];
    if (s.kind == Slot::unassigned) s = {Slot::output, static_cast<std::uint32_t>(i), 0};
    output_sources_.push_back({s.kind, s.index});
  }
  // Instructions, and each intermediate's lifetime [first, last] in instruction indices.
  std::vector<std::size_t> first(g.types.size(), 0), last(g.types.size(), 0);
  std::vector<std::ptrdiff_t> last_read(g.types.size(), -1);
  std::size_t max_operands = 0;
  for (std::size_t k = 0; k < g.equations.size(); ++k) {
    const Equation& eq = g.equations[k];
    if (eq.inputs.size() > 0xFFFF || eq.outputs.size() > 0xFFFF)
      throw ValueError("eqx::Plan: an equation with more than 65535 inputs or outputs");
    Instr in{eq.prim, &eq.params, nullptr, 0, static_cast<std::uint32_t>(operands_.size()),
             static_cast<std::uint16_t>(eq.inputs.size()), static_cast<std::uint16_t>(eq.outputs.size())};
    // Work a primitive does once per equation (a fused region's tile
    // program, a loop's compiled body) is done now, not on every run.
    if (std::unique_ptr<PreparedKernel> prepared = eq.prim->prepare(eq.params)) {
      in.prepared = prepared.get();
      in.scratch_offset = stats_.scratch_bytes;
      stats_.scratch_bytes += (prepared->scratch_bytes() + 63) / 64 * 64;
      prepared_.push_back(std::move(prepared));
    }
    for (Var v : eq.inputs) {
      operands_.push_back(v);
      last[v] = k;
      last_read[v] = static_cast<std::ptrdiff_t>(k);
    }
    for (Var v : eq.outputs) {
      operands_.push_back(v);
      first[v] = last[v] = k;
      if (slots_[v].kind == Slot::unassigned) slots_[v].kind = Slot::arena;
    }
    max_operands = std::max(max_operands, eq.inputs.size() + eq.outputs.size());
    instrs_.push_back(in);
  }
  max_operands_ = max_operands;
  assign_arena(first, last);
  find_hosts(first, last_read);
  for (Var v = 0; v < slots_.size(); ++v)
    if (slots_[v].kind != Slot::unassigned) assigned_.push_back(v);
  stats_.num_instructions = instrs_.size();
}

namespace detail {
/// True if a fused region (the `fused` equation `eq`) may write its output
/// `out` over its input `in`: every operation reading the input runs no
/// later, within a tile, than the one writing the output. At the same
/// position it is safe: a region's operations are elementwise, and their
/// tile kernels load each element (or SIMD register) of every operand
/// before storing the results there.
inline bool fused_in_place(const Equation& eq, std::size_t in, std::size_t out) {
  const Graph& body = *eq.params.get<GraphRef>("graph");
  const Var result = body.outputs[out];
  std::ptrdiff_t writer = -1;
  for (std::size_t k = 0; k < body.equations.size() && writer < 0; ++k)
    for (Var v : body.equations[k].outputs)
      if (v == result) writer = static_cast<std::ptrdiff_t>(k);
  if (writer < 0) return false;  // an input or constant passed through
  for (std::size_t p = 0; p < eq.inputs.size(); ++p) {
    if (eq.inputs[p] != eq.inputs[in]) continue;  // the same value may come in at several positions
    for (std::size_t k = 0; k < body.equations.size(); ++k) {
      const Equation& op = body.equations[k];
      if (std::find(op.inputs.begin(), op.inputs.end(), body.inputs[p]) == op.inputs.end()) continue;
      const auto ks = static_cast<std::ptrdiff_t>(k);
      if (ks > writer) return false;
    }
  }
  return true;
}
}  // namespace detail

EQX_KERNEL_INLINE void Plan::find_hosts(const std::vector<std::size_t>& writer,
                                        const std::vector<std::ptrdiff_t>& last_read) {
  const Graph& g = graph_;
  std::vector<bool> passed_through(g.inputs.size(), false);  // such an input's buffer is an output already
  for (const OutputSource& o : output_sources_)
    if (o.kind == Slot::input) passed_through[o.index] = true;
  std::vector<std::vector<std::uint32_t>> hosts(g.outputs.size());
  bool any = false;
  for (std::size_t i = 0; i < g.outputs.size(); ++i) {
    if (output_sources_[i].kind != Slot::output || output_sources_[i].index != i) continue;
    const Var v = g.outputs[i];
    const std::size_t k = writer[v];
    const Equation& eq = g.equations[k];
    for (std::size_t j = 0; j < g.inputs.size(); ++j) {
      const Var x = g.inputs[j];
      if (passed_through[j] || g.types[x].dtype != g.types[v].dtype || g.types[x].shape != g.types[v].shape) continue;
      bool ok = last_read[x] < static_cast<std::ptrdiff_t>(k);
      const bool elementwise_loop =
          eq.prim->elementwise() && (eq.outputs.size() == 1 || eq.prim->name() == "elementwise_kernel");
      if (!ok && last_read[x] == static_cast<std::ptrdiff_t>(k) && elementwise_loop) {
        ok = true;  // loads each element (or SIMD register) of its operands before storing results there
      } else if (!ok && last_read[x] == static_cast<std::ptrdiff_t>(k) && eq.prim->name() == "fused") {
        const auto at = std::find(eq.inputs.begin(), eq.inputs.end(), x) - eq.inputs.begin();
        const auto out = std::find(eq.outputs.begin(), eq.outputs.end(), v) - eq.outputs.begin();
        ok = detail::fused_in_place(eq, static_cast<std::size_t>(at), static_cast<std::size_t>(out));
      }
      if (ok) {
        hosts[i].push_back(static_cast<std::uint32_t>(j));
        any = true;
      }
    }
  }
  if (any) hosts_ = std::move(hosts);
}

EQX_KERNEL_INLINE void Plan::assign_arena(const std::vector<std::size_t>& first, const std::vector<std::size_t>& last) {
  std::vector<Var> vars;
  auto bytes = [&](Var v) {
    std::size_t b = static_cast<std::size_t>(graph_.types[v].shape.numel()) * itemsize(graph_.types[v].dtype);
    return (b + 63) / 64 * 64;
  };
  for (Var v = 0; v < slots_.size(); ++v)
    if (slots_[v].kind == Slot::arena) {
      vars.push_back(v);
      stats_.intermediate_bytes += bytes(v);
    }
  stats_.num_intermediates = vars.size();
  std::stable_sort(vars.begin(), vars.end(), [&](Var a, Var b) { return bytes(a) > bytes(b); });
  std::vector<Var> placed;
  std::vector<std::pair<std::size_t, std::size_t>> busy;
  for (Var v : vars) {
    busy.clear();
    for (Var u : placed)
      if (first[u] <= last[v] && first[v] <= last[u]) busy.emplace_back(slots_[u].offset, slots_[u].offset + bytes(u));
    std::sort(busy.begin(), busy.end());
    std::size_t offset = 0;
    for (auto [lo, hi] : busy) {
      if (offset + bytes(v) <= lo) break;
      offset = std::max(offset, hi);
    }
    slots_[v].offset = offset;
    stats_.arena_bytes = std::max(stats_.arena_bytes, offset + bytes(v));
    placed.push_back(v);
  }
}
#endif

}  // namespace eqx
