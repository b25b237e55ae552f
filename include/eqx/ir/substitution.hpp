#pragma once
// Renaming variables while rewriting a graph: passes that replace a value
// by an equivalent one record `replace(old, new)` and apply it to every later
// use and to the outputs.

#include <cstddef>
#include <numeric>
#include <vector>

#include "eqx/ir/graph.hpp"

namespace eqx::detail {

class Substitution {
 public:
  explicit Substitution(const Graph& g) : to_(g.types.size()) { std::iota(to_.begin(), to_.end(), Var{0}); }
  void replace(Var from, Var to) { to_[from] = (*this)(to); }
  Var operator()(Var v) const { return to_[v]; }
  void apply(std::vector<Var>& vs) const {
    for (Var& v : vs) v = to_[v];
  }
  /// Grows with the graph when a pass adds variables.
  void add(Var v) {
    if (v >= to_.size()) {
      std::size_t old = to_.size();
      to_.resize(v + 1);
      std::iota(to_.begin() + static_cast<std::ptrdiff_t>(old), to_.end(), static_cast<Var>(old));
    }
  }

 private:
  std::vector<Var> to_;
};

}  // namespace eqx::detail
