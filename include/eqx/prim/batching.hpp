#pragma once
// Pieces shared by batching rules (Primitive::batch), as in JAX's
// batching.py: the batch size, the elementwise rule, and "batch axis first".
//
// A rule sees each input with its batch axis (or `not_mapped`) and returns
// the outputs with theirs. Most rules move the batch axis to the front and
// shift their axis parameters by one; elementwise rules keep it in place
// when they can, so a chain of elementwise ops never transposes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eqx/prim/primitive.hpp"

namespace eqx::detail {

/// The batch axis of each input of a batching rule.
using BatchDims = std::span<const std::int64_t>;

/// The number of examples: the batch axis length of the first mapped input.
inline std::int64_t batch_size(std::span<const Array> args, std::span<const std::int64_t> dims) {
  for (std::size_t i = 0; i < args.size(); ++i)
    if (dims[i] != not_mapped) return args[i].shape()[static_cast<std::size_t>(dims[i])];
  throw ValueError("eqx: internal error: a batching rule was called with no mapped input");
}

/// The rank an input has for one example.
inline std::size_t example_rank(const Array& x, std::int64_t dim) { return x.ndim() - (dim != not_mapped ? 1 : 0); }

/// `axes` shifted past a batch axis put first.
inline std::vector<std::int64_t> shift_axes(std::vector<std::int64_t> axes) {
  for (auto& a : axes) ++a;
  return axes;
}

/// `p` with `value` put first in each of the per-axis parameters `names`:
/// their entry for a batch axis put first (a pad of 0, a window of 1).
inline Params with_leading_entry(Params p, std::initializer_list<ParamName> names, std::int64_t value) {
  for (ParamName name : names) {
    std::vector<std::int64_t> v = p.get<std::vector<std::int64_t>>(name);
    v.insert(v.begin(), value);
    p.set(name, std::move(v));
  }
  return p;
}

/// Every input with its batch axis first; unmapped inputs are broadcast to
/// the batch size when `broadcast_unmapped`, else left as they are.
inline std::vector<Array> batch_all_first(const RuleOps& o, std::span<const Array> args,
                                          std::span<const std::int64_t> dims, bool broadcast_unmapped) {
  const std::int64_t n = batch_size(args, dims);
  std::vector<Array> moved;
  moved.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i)
    moved.push_back(dims[i] == not_mapped && !broadcast_unmapped ? args[i] : o.batch_first(args[i], dims[i], n));
  return moved;
}

/// The batching rule of a primitive applied to one input with its batch
/// axis first and its axis parameters shifted past it: every output is
/// batched along axis 0.
inline Batched batch_leading(const Primitive& p, const RuleOps& o, std::span<const Array> args,
                             std::span<const std::int64_t> dims, const Params& shifted) {
  std::vector<Array> moved = batch_all_first(o, args, dims, true);
  std::vector<Array> out = eqx::bind(p, moved, shifted);
  std::vector<std::int64_t> dims_out(out.size(), 0);  // before `out` is moved from
  return {std::move(out), std::move(dims_out)};
}

/// The batching rule of elementwise primitives with numpy broadcasting
/// (unary, binary, select, convert). When every mapped input has its batch
/// axis at the same place and full rank, and every unmapped input only
/// broadcasts against the axes after it, the op applies as it is. Otherwise
/// mapped inputs get their batch axis first and are padded with unit axes
/// to the common rank, so the unmapped ones broadcast against the right axes.
inline Batched batch_elementwise(const Primitive& p, const RuleOps& o, std::span<const Array> args,
                                 std::span<const std::int64_t> dims, const Params& params) {
  std::size_t rank = 0;
  for (std::size_t i = 0; i < args.size(); ++i) rank = std::max(rank, example_rank(args[i], dims[i]));
  std::int64_t common = not_mapped;
  bool in_place = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (dims[i] == not_mapped) continue;
    if (common == not_mapped) common = dims[i];
    in_place = in_place && dims[i] == common && args[i].ndim() == rank + 1;
  }
  for (std::size_t i = 0; i < args.size(); ++i)
    if (dims[i] == not_mapped) in_place = in_place && args[i].ndim() + static_cast<std::size_t>(common) <= rank;
  if (in_place) return {eqx::bind(p, args, params), {common}};

  std::vector<Array> moved;
  moved.reserve(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (dims[i] == not_mapped) {
      moved.push_back(args[i]);
      continue;
    }
    Array x = o.moveaxis(args[i], dims[i], 0);
    Shape s = x.shape();
    while (s.size() < rank + 1) s.insert(1, 1);
    moved.push_back(o.reshape(x, s));
  }
  return {eqx::bind(p, moved, params), {0}};
}

}  // namespace eqx::detail
