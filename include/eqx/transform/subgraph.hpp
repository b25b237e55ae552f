#pragma once
// What the control-flow primitives (scan, cond, while_loop) share: graphs
// built by tracing a function of Arrays, compiled bodies that kernels run on
// every iteration, and the bodies' inputs in a primitive's operand order.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "eqx/ir/graph.hpp"
#include "eqx/ir/optimize.hpp"
#include "eqx/ir/plan.hpp"
#include "eqx/ir/trace.hpp"
#include "eqx/prim/primitive.hpp"
#include "eqx/transform/trace_call.hpp"

namespace eqx::detail {

/// The graph of `fn` on fresh inputs of `types`: how rules build new loop
/// and branch bodies (a body's JVP, its batched version, ...).
inline GraphRef trace_graph(std::span<const AbstractArray> types,
                            const std::function<std::vector<Array>(std::span<const Array>)>& fn) {
  TraceScope scope;
  std::vector<Array> inputs;
  inputs.reserve(types.size());
  for (const AbstractArray& t : types) inputs.push_back(scope.input(t));
  std::vector<Array> outputs = fn(inputs);
  return std::make_shared<const Graph>(scope.finish(outputs));
}

/// The optimised, compiled plans of body graphs, one per graph, shared by
/// every kernel that runs it: control flow's prepared kernels (one lookup
/// when an enclosing Plan is built) and eager calls (one per call). Entries
/// go when their graph does, or at eqx::clear_caches() (kernels already
/// holding a plan keep it).
class CompiledBodies {
 public:
  static CompiledBodies& instance() {
    static CompiledBodies* bodies = new CompiledBodies;  // never destroyed: statics may run loops late
    return *bodies;
  }
  std::shared_ptr<const Plan> get(const GraphRef& body) {
    {
      std::lock_guard lock(mutex_);
      auto it = cache_.find(body.get());
      if (it != cache_.end() && it->second.graph.lock() == body) return it->second.plan;
    }
    // Compiled outside the lock: folding constants may run a nested loop's kernel.
    auto plan = std::make_shared<const Plan>(optimize(Graph(*body)));
    std::lock_guard lock(mutex_);
    if (cache_.size() >= 64) prune();
    Entry& e = cache_[body.get()];
    if (e.graph.lock() != body) e = {body, std::move(plan)};
    return e.plan;
  }
  /// Bodies cached whose graph is alive.
  std::size_t size() {
    std::lock_guard lock(mutex_);
    prune();
    return cache_.size();
  }
  void clear() {
    std::lock_guard lock(mutex_);
    cache_.clear();
  }

 private:
  struct Entry {
    std::weak_ptr<const Graph> graph;
    std::shared_ptr<const Plan> plan;
  };
  void prune() {
    std::erase_if(cache_, [](const auto& kv) { return kv.second.graph.expired(); });
  }
  std::mutex mutex_;
  std::unordered_map<const Graph*, Entry> cache_;
};

/// The compiled plan of a body graph (CompiledBodies).
inline std::shared_ptr<const Plan> compiled_body(const GraphRef& body) { return CompiledBodies::instance().get(body); }

/// A prepared kernel's scratch, carved into 64-byte-aligned regions:
/// `reserve` them when preparing, find them at `base + offset` when running.
class ScratchLayout {
 public:
  std::size_t reserve(std::size_t bytes) {
    const std::size_t offset = bytes_;
    bytes_ += (bytes + 63) / 64 * 64;
    return offset;
  }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_ = 0;
};

/// Bytes of one value of type `t`.
inline std::size_t bytes_of(const AbstractArray& t) {
  return static_cast<std::size_t>(t.shape.numel()) * itemsize(t.dtype);
}

/// Runs a prepared kernel once, on scratch of its own: the eager path of
/// the control-flow primitives (a Plan lends its per-call scratch instead).
inline void run_prepared(const PreparedKernel& k, std::span<const View> in, std::span<const View> out) {
  Storage scratch(k.scratch_bytes());
  k.run(in, out, scratch.data());
}

/// Moves the inputs a body got from values it captured (appended at the
/// end by lift_captured_tracers, `count` of them) to position `at`.
inline void move_lifted_inputs(Graph& g, std::vector<Array>& args, std::size_t count, std::size_t at) {
  std::rotate(g.inputs.begin() + static_cast<std::ptrdiff_t>(at), g.inputs.end() - static_cast<std::ptrdiff_t>(count),
              g.inputs.end());
  std::rotate(args.begin() + static_cast<std::ptrdiff_t>(at), args.end() - static_cast<std::ptrdiff_t>(count), args.end());
}

/// A body traced from a user function: `g`'s inputs are the function's own
/// Arrays (when it is a module) then its arguments' leaves; values it
/// captured from enclosing traces become inputs after the module's Arrays,
/// so `args[0, num_consts)` are the loop-invariant operands.
struct TracedBody {
  GraphRef graph;
  std::vector<Array> args;
  std::size_t num_consts;
};
inline TracedBody lift_body(Graph g, std::vector<Array> args, std::size_t num_consts) {
  const std::size_t before = args.size();
  lift_captured_tracers(g, args);
  const std::size_t lifted = args.size() - before;
  move_lifted_inputs(g, args, lifted, num_consts);
  return {std::make_shared<const Graph>(std::move(g)), std::move(args), num_consts + lifted};
}

/// A per-step view into a stacked buffer: element `t` along axis 0.
inline void* step_pointer(const View& stacked, std::int64_t t) {
  const std::size_t step_bytes = stacked.numel() == 0 ? 0 : stacked.bytes() / static_cast<std::size_t>((*stacked.shape)[0]);
  return static_cast<std::byte*>(stacked.data) + static_cast<std::size_t>(t) * step_bytes;
}

/// "f32[3], i32[]": types for messages.
inline std::string types_str(std::span<const AbstractArray> types) {
  std::string s;
  for (std::size_t i = 0; i < types.size(); ++i) s += (i ? ", " : "") + types[i].str();
  return s;
}

}  // namespace eqx::detail
