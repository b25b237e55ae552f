#pragma once
// Elementwise fusion: a chain (or any DAG) of elementwise equations with the
// same output shape becomes one `fused` equation whose parameter is the
// sub-graph it runs. The fused kernel walks the output in tiles of about a
// thousand elements and runs every operation of the region on one tile
// before moving on, so intermediates live in a few cache-resident tile
// buffers instead of full-size arrays.
//
// Inputs of a region may broadcast: a scalar is expanded into a tile once,
// an array that repeats along leading axes (a bias row) is copied per tile,
// any other numpy broadcast is gathered per tile.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/core/config.hpp"
#include "eqx/core/threads.hpp"
#include "eqx/ir/graph.hpp"
#include "eqx/prim/broadcast.hpp"
#include "eqx/prim/primitive.hpp"

namespace eqx {

namespace detail {

/// A region's body compiled for tiled execution: the fused primitive's
/// prepared kernel (a Plan builds it once per fused equation).
class FusedProgram final : public PreparedKernel {
 public:
  explicit FusedProgram(const Graph& body);

  void run(std::span<const View> in, std::span<const View> out, void*) const override { run(in, out); }

  /// Runs the region on full-size input and output buffers.
  void run(std::span<const View> in, std::span<const View> out) const;

  /// Operands and results of one fused operation (select has 3 operands;
  /// an eqx::elementwise_kernel may have more, and several results).
  static constexpr std::size_t kMaxInputs = 12;
  static constexpr std::size_t kMaxOutputs = 4;

  std::int64_t tile_size() const { return tile_; }
  int num_tile_buffers() const { return num_slots_; }

 private:
  struct alignas(64) CacheLine {
    double words[8];
  };
  enum class Access : std::uint8_t { full, scalar, rows, general };
  struct Loc {
    enum Kind : std::uint8_t { input, slot, output } kind = slot;
    int index = 0;
    DType dtype = DType::float32;
  };
  struct Input {
    Access access;
    DType dtype;
    std::int64_t numel;
    int slot;
    BroadcastPlan<1> plan;
  };
  /// Where an operand is in a tile: bases[base] + offset + tile start x step
  /// (base 0 is the scratch, whose slots sit at fixed offsets; inputs and
  /// outputs step by their item size).
  struct Operand {
    std::uint32_t base;
    std::uint32_t step;
    std::size_t offset;
  };
  struct Op {
    const Primitive* prim;
    const Params* params;
    TileKernel tile;        // one result
    MultiTileKernel multi;  // several results
    Operand in[kMaxInputs];
    Operand out[kMaxOutputs];
    DType in_dtype[kMaxInputs];
    DType out_dtype;  // of a single result, for `kernel`
    int nin, nout;
  };

  static bool is_input(const Graph& body, Var v) {
    return std::find(body.inputs.begin(), body.inputs.end(), v) != body.inputs.end();
  }

  /// How an input of shape s is read in the index space of the region.
  Access access_of(const Shape& s) const {
    if (s.numel() == n_) return Access::full;  // broadcastable with equal size: same layout
    if (s.numel() == 1) return Access::scalar;
    // Leading 1s, then exactly the trailing dimensions of the region: a row repeated.
    std::size_t k = 0;
    while (k < s.size() && s[k] == 1) ++k;
    const std::size_t rest = s.size() - k;
    bool suffix = rest <= shape_.size();
    for (std::size_t i = 0; suffix && i < rest; ++i) suffix = s[k + i] == shape_[shape_.size() - rest + i];
    return suffix ? Access::rows : Access::general;
  }

  static void fill_scalar(const View& v, DType dt, void* dst, std::int64_t count) {
    // Typed fills: a memcpy of a run-time item size per element was a
    // library call per element (a few µs for one 2048-element tile).
    auto fill = [&](auto item) {
      using U = decltype(item);
      U value;
      std::memcpy(&value, v.data, sizeof(U));
      std::fill(static_cast<U*>(dst), static_cast<U*>(dst) + count, value);
    };
    switch (itemsize(dt)) {
      case 1: fill(std::uint8_t{}); break;
      case 2: fill(std::uint16_t{}); break;
      case 4: fill(std::uint32_t{}); break;
      default: fill(std::uint64_t{}); break;
    }
  }

  static void copy_rows(const View& v, const Input& x, void* dst, std::int64_t start, std::int64_t len) {
    const std::size_t w = itemsize(x.dtype);
    auto* out = static_cast<std::byte*>(dst);
    const auto* src = static_cast<const std::byte*>(v.data);
    std::int64_t pos = start % x.numel;
    for (std::int64_t done = 0; done < len;) {
      std::int64_t chunk = std::min(len - done, x.numel - pos);
      std::memcpy(out + static_cast<std::size_t>(done) * w, src + static_cast<std::size_t>(pos) * w,
                  static_cast<std::size_t>(chunk) * w);
      done += chunk;
      pos = 0;
    }
  }

  void gather(const View& v, const Input& x, void* dst, std::int64_t start, std::int64_t len) const {
    const Shape& dims = x.plan.dims;
    const Shape& strides = x.plan.strides[0];
    const std::size_t r = dims.size();
    Shape idx = Shape::filled(r, 0);
    std::int64_t rem = start, offset = 0;
    for (std::size_t d = r; d-- > 0;) {
      idx[d] = rem % dims[d];
      rem /= dims[d];
      offset += idx[d] * strides[d];
    }
    // The item size is a compile-time constant in each loop, so the copy is
    // a move, not a library call per element.
    auto copy = [&](auto item) {
      using U = decltype(item);
      auto* out = static_cast<std::byte*>(dst);
      const auto* src = static_cast<const std::byte*>(v.data);
      for (std::int64_t i = 0; i < len; ++i) {
        std::memcpy(out + static_cast<std::size_t>(i) * sizeof(U), src + static_cast<std::size_t>(offset) * sizeof(U),
                    sizeof(U));
        for (std::size_t d = r; d-- > 0;) {  // odometer step
          offset += strides[d];
          if (++idx[d] < dims[d]) break;
          offset -= idx[d] * strides[d];
          idx[d] = 0;
        }
      }
    };
    switch (itemsize(x.dtype)) {
      case 1: copy(std::uint8_t{}); break;
      case 2: copy(std::uint16_t{}); break;
      case 4: copy(std::uint32_t{}); break;
      default: copy(std::uint64_t{}); break;
    }
  }

  Shape shape_;
  std::int64_t n_ = 0, tile_ = 1;
  int num_slots_ = 0;
  std::vector<Input> inputs_;
  std::vector<Op> ops_;
};

/// The `fused` primitive: runs its "graph" parameter as one tiled loop.
/// Passes create it (eqx::fuse_elementwise); it is never bound by user code.
struct FusedPrim final : Primitive {
  std::string_view name() const override { return "fused"; }
  std::vector<AbstractArray> shape_rule(std::span<const AbstractArray>, const Params& p) const override {
    return p.get<GraphRef>("graph")->output_types();
  }
  void kernel(std::span<const View> in, std::span<const View> out, const Params& p) const override;
  std::unique_ptr<PreparedKernel> prepare(const Params& p) const override;
};
#if EQX_KERNELS_HERE(CONTROL_FLOW)
EQX_KERNEL_INLINE void FusedPrim::kernel(std::span<const View> in, std::span<const View> out, const Params& p) const {
  FusedProgram(*p.get<GraphRef>("graph")).run(in, out);
}
EQX_KERNEL_INLINE std::unique_ptr<PreparedKernel> FusedPrim::prepare(const Params& p) const {
  return std::make_unique<FusedProgram>(*p.get<GraphRef>("graph"));
}

EQX_KERNEL_INLINE FusedProgram::FusedProgram(const Graph& body) {
  const std::size_t nvars = body.types.size();
  shape_ = body.types[body.outputs.at(0)].shape;
  n_ = shape_.numel();
  std::vector<Loc> loc(nvars);
  std::vector<std::int64_t> last_use(nvars, -1);
  for (std::size_t k = 0; k < body.equations.size(); ++k)
    for (Var v : body.equations[k].inputs) last_use[v] = static_cast<std::int64_t>(k);

  std::vector<int> free_slots;
  auto take_slot = [&] {
    if (!free_slots.empty()) {
      int s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    return num_slots_++;
  };
  for (std::size_t i = 0; i < body.inputs.size(); ++i) {
    const AbstractArray& t = body.types[body.inputs[i]];
    Input in{access_of(t.shape), t.dtype, t.shape.numel(), -1, {}};
    if (in.access == Access::general) in.plan = plan_broadcast<1>(shape_, {&t.shape});
    if (in.access != Access::full) in.slot = take_slot();  // held for the whole region
    loc[body.inputs[i]] = in.access == Access::full ? Loc{Loc::input, static_cast<int>(i), t.dtype}
                                                   : Loc{Loc::slot, in.slot, t.dtype};
    inputs_.push_back(std::move(in));
  }
  struct OpLocs {
    std::array<Loc, kMaxInputs> in{};
    std::array<Loc, kMaxOutputs> out{};
  };
  std::vector<OpLocs> locs;  // per op, until the tile size is known
  std::vector<int> output_index(nvars, -1);
  for (std::size_t i = 0; i < body.outputs.size(); ++i) output_index[body.outputs[i]] = static_cast<int>(i);
  for (std::size_t k = 0; k < body.equations.size(); ++k) {
    const Equation& eq = body.equations[k];
    Op op{eq.prim, &eq.params, nullptr, nullptr, {}, {}, {}, {}, static_cast<int>(eq.inputs.size()),
          static_cast<int>(eq.outputs.size())};
    OpLocs op_locs;
    std::vector<AbstractArray> in_types;
    for (std::size_t j = 0; j < eq.inputs.size(); ++j) {
      op_locs.in[j] = loc[eq.inputs[j]];
      op.in_dtype[j] = op_locs.in[j].dtype;
      in_types.push_back(body.types[eq.inputs[j]]);
    }
    if (eq.outputs.size() == 1) op.tile = eq.prim->tile_kernel(in_types, eq.params);
    else op.multi = eq.prim->multi_tile_kernel(in_types, eq.params);
    for (std::size_t j = 0; j < eq.outputs.size(); ++j) {
      const Var out = eq.outputs[j];
      const DType dt = body.types[out].dtype;
      op_locs.out[j] = output_index[out] >= 0 ? Loc{Loc::output, output_index[out], dt} : Loc{Loc::slot, take_slot(), dt};
      loc[out] = op_locs.out[j];
    }
    op.out_dtype = body.types[eq.outputs[0]].dtype;
    // Free slots of values read for the last time (after choosing the
    // output slots: a convert to a wider dtype must not write over its input).
    for (Var v : eq.inputs)
      if (last_use[v] == static_cast<std::int64_t>(k) && loc[v].kind == Loc::slot && !is_input(body, v)) {
        free_slots.push_back(loc[v].index);
        last_use[v] = -1;  // once: `mul a a` reads a twice but frees its slot once
      }
    locs.push_back(op_locs);
    ops_.push_back(op);
  }
  // A multiple of 16 elements, so every tile of a 64-byte aligned buffer
  // starts aligned for 16-float packets.
  tile_ = std::clamp<std::int64_t>((std::int64_t{1} << 16) / (8 * std::max(num_slots_, 1)), 128, 2048) / 16 * 16;
  tile_ = std::min(tile_, (std::max<std::int64_t>(n_, 1) + 15) / 16 * 16);
  const std::size_t nin = body.inputs.size();
  auto operand = [&](const Loc& l) -> Operand {
    const auto i = static_cast<std::uint32_t>(l.index);
    switch (l.kind) {
      case Loc::input: return {1 + i, static_cast<std::uint32_t>(itemsize(l.dtype)), 0};
      case Loc::output: return {static_cast<std::uint32_t>(1 + nin) + i, static_cast<std::uint32_t>(itemsize(l.dtype)), 0};
      default: return {0, 0, static_cast<std::size_t>(tile_) * sizeof(double) * i};
    }
  };
  for (std::size_t k = 0; k < ops_.size(); ++k) {
    for (int j = 0; j < ops_[k].nin; ++j) ops_[k].in[j] = operand(locs[k].in[static_cast<std::size_t>(j)]);
    for (int j = 0; j < ops_[k].nout; ++j) ops_[k].out[j] = operand(locs[k].out[static_cast<std::size_t>(j)]);
  }
}

EQX_KERNEL_INLINE void FusedProgram::run(std::span<const View> in, std::span<const View> out) const {
  if (n_ == 0) return;
  const std::int64_t tiles = (n_ + tile_ - 1) / tile_;
  parallel_for(tiles, tile_ * static_cast<std::int64_t>(ops_.size()), [&](std::int64_t t0, std::int64_t t1) {
    // Slots start on 64-byte boundaries (tile_ is a multiple of 8 words):
    // Eigen peels a misaligned head element by element, which on a 16-float
    // tile is the whole tile.
    thread_local std::vector<CacheLine> scratch;  // grows once per thread, then reused
    const std::size_t slot_words = static_cast<std::size_t>(tile_);
    const std::size_t lines = (slot_words * static_cast<std::size_t>(num_slots_) + 7) / 8;
    if (scratch.size() < lines) scratch.resize(lines);
    auto* words = reinterpret_cast<double*>(scratch.data());
    auto slot_ptr = [&](int s) { return static_cast<void*>(words + slot_words * static_cast<std::size_t>(s)); };
    for (std::size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].access == Access::scalar) fill_scalar(in[i], inputs_[i].dtype, slot_ptr(inputs_[i].slot), tile_);
    // Operand pointers: base (scratch, an input or an output buffer) +
    // fixed offset + tile start x item size, without branching on the kind.
    thread_local std::vector<std::byte*> bases;
    bases.resize(1 + in.size() + out.size());
    bases[0] = reinterpret_cast<std::byte*>(words);
    for (std::size_t i = 0; i < in.size(); ++i) bases[1 + i] = static_cast<std::byte*>(in[i].data);
    for (std::size_t i = 0; i < out.size(); ++i) bases[1 + in.size() + i] = static_cast<std::byte*>(out[i].data);
    View in_views[kMaxInputs];
    View out_view;
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t start = t * tile_, len = std::min(tile_, n_ - start);
      const Shape tile_shape{len};
      for (std::size_t i = 0; i < inputs_.size(); ++i) {
        const Input& x = inputs_[i];
        if (x.access == Access::rows) copy_rows(in[i], x, slot_ptr(x.slot), start, len);
        else if (x.access == Access::general) gather(in[i], x, slot_ptr(x.slot), start, len);
      }
      const auto ustart = static_cast<std::size_t>(start);
      auto locate = [&](const Operand& o) -> void* { return bases[o.base] + o.offset + ustart * o.step; };
      auto run_op = [&](const Op& op) __attribute__((always_inline)) {
        if (op.tile) [[likely]] {  // the fast path: a plain function on contiguous tiles
          const void* ptrs[kMaxInputs];
          for (int j = 0; j < op.nin; ++j) ptrs[j] = locate(op.in[j]);
          op.tile(ptrs, locate(op.out[0]), len);
        } else if (op.multi) {
          const void* ptrs[kMaxInputs];
          for (int j = 0; j < op.nin; ++j) ptrs[j] = locate(op.in[j]);
          void* outs[kMaxOutputs];
          for (int j = 0; j < op.nout; ++j) outs[j] = locate(op.out[j]);
          op.multi(ptrs, outs, len);
        } else {
          for (int j = 0; j < op.nin; ++j) in_views[j] = View{locate(op.in[j]), &tile_shape, op.in_dtype[j]};
          out_view = View{locate(op.out[0]), &tile_shape, op.out_dtype};
          op.prim->kernel(std::span<const View>(in_views, static_cast<std::size_t>(op.nin)),
                          std::span<const View>(&out_view, 1), *op.params);
        }
      };
      // Four call sites in turn rather than one: a chain of many small
      // ops calls a different tile function each time, and separate sites
      // give the branch predictor a history of their own.
      const std::size_t nops = ops_.size();
      std::size_t k = 0;
      for (; k + 4 <= nops; k += 4) {
        run_op(ops_[k]);
        run_op(ops_[k + 1]);
        run_op(ops_[k + 2]);
        run_op(ops_[k + 3]);
      }
      for (; k < nops; ++k) run_op(ops_[k]);
    }
  });
}
#endif

}  // namespace detail

namespace prim {
inline const detail::FusedPrim fused;
}  // namespace prim

/// The graph with each region of two or more elementwise equations of one
/// output shape replaced by a `fused` equation (see the file comment).
/// Usage: `g = eqx::fuse_elementwise(std::move(g));`
Graph fuse_elementwise(Graph g);
#if EQX_KERNELS_HERE(GRAPH)
EQX_KERNEL_INLINE Graph fuse_elementwise(Graph g) {
  const std::size_t neq = g.equations.size();
  const detail::VarSources sources(g);
  struct Region {
    Shape shape;
    std::size_t first;
    std::vector<std::size_t> members;
  };
  std::vector<Region> regions;
  std::vector<int> region_of(neq, -1);
  using detail::FusedProgram;
  auto fusable = [&](const Equation& eq) {
    if (!eq.prim->elementwise() || eq.inputs.size() > FusedProgram::kMaxInputs) return false;
    if (eq.outputs.size() == 1) return true;
    if (eq.outputs.size() > FusedProgram::kMaxOutputs) return false;
    std::vector<AbstractArray> in_types;
    for (Var v : eq.inputs) in_types.push_back(g.types[v]);
    return eq.prim->multi_tile_kernel(in_types, eq.params) != nullptr;
  };
  for (std::size_t e = 0; e < neq; ++e) {
    const Equation& eq = g.equations[e];
    if (!fusable(eq)) continue;
    const Shape& s = g.types[eq.outputs[0]].shape;
    // Every input must exist before region r starts, or come from r.
    auto can_join = [&](int r) {
      const Region& region = regions[static_cast<std::size_t>(r)];
      if (region.shape != s) return false;
      for (Var u : eq.inputs) {
        const std::int32_t q = sources.producer[u];
        if (q >= 0 && region_of[static_cast<std::size_t>(q)] != r && static_cast<std::size_t>(q) >= region.first)
          return false;
      }
      return true;
    };
    int joined = -1;
    for (Var v : eq.inputs) {  // first choice: the region of an input
      const std::int32_t p = sources.producer[v];
      if (p >= 0 && region_of[static_cast<std::size_t>(p)] >= 0 && can_join(region_of[static_cast<std::size_t>(p)])) {
        joined = region_of[static_cast<std::size_t>(p)];
        break;
      }
    }
    // Else a recent region of the same shape (an `exp(x)` that starts a
    // branch later merged by a select belongs with it).
    for (int r = static_cast<int>(regions.size()) - 1; joined < 0 && r >= 0 && r >= static_cast<int>(regions.size()) - 8; --r)
      if (can_join(r)) joined = r;
    if (joined < 0) {
      joined = static_cast<int>(regions.size());
      regions.push_back({s, e, {}});
    }
    regions[static_cast<std::size_t>(joined)].members.push_back(e);
    region_of[e] = joined;
  }

  // Which values are used outside their region (by other equations or as outputs).
  std::vector<char> used_outside(g.types.size(), 0);
  for (Var v : g.outputs) used_outside[v] = 1;
  for (std::size_t e = 0; e < neq; ++e)
    for (Var v : g.equations[e].inputs) {
      const std::int32_t p = sources.producer[v];
      if (p >= 0 && region_of[static_cast<std::size_t>(p)] != region_of[e]) used_outside[v] = 1;
    }

  std::vector<Equation> out;
  for (std::size_t e = 0; e < neq; ++e) {
    const int r = region_of[e];
    if (r < 0 || regions[static_cast<std::size_t>(r)].members.size() < 2) {
      out.push_back(std::move(g.equations[e]));
      continue;
    }
    const Region& region = regions[static_cast<std::size_t>(r)];
    if (region.first != e) continue;  // emitted with the region's first member
    auto body = std::make_shared<Graph>();
    std::map<Var, Var> inner;  // outer var -> body var
    Equation fused{&prim::fused, {}, {}, {}};
    for (std::size_t m : region.members) {
      Equation& eq = g.equations[m];
      Equation copy{eq.prim, {}, {}, eq.params};
      for (Var v : eq.inputs) {
        auto it = inner.find(v);
        if (it == inner.end()) {  // an input of the region
          Var b = body->new_var(g.types[v]);
          body->inputs.push_back(b);
          fused.inputs.push_back(v);
          it = inner.emplace(v, b).first;
        }
        copy.inputs.push_back(it->second);
      }
      for (Var o : eq.outputs) {
        Var b = body->new_var(g.types[o]);
        inner.emplace(o, b);
        copy.outputs.push_back(b);
        if (used_outside[o]) {
          body->outputs.push_back(b);
          fused.outputs.push_back(o);
        }
      }
      body->equations.push_back(std::move(copy));
    }
    fused.params.set("graph", GraphRef(std::move(body)));
    out.push_back(std::move(fused));
  }
  g.equations = std::move(out);
  return g;
}
#endif

}  // namespace eqx
