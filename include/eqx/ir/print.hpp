#pragma once
// The text form of a Graph, as JAX prints a jaxpr:
//
//   { lambda ; a:f32[3,2] b:f32[2]. let
//       c:f32[3] = dot_general[batch_lhs=() batch_rhs=() contract_lhs=(1,) contract_rhs=(0,)] a b
//       d:f32[3] = add c 1.0:f32[]
//     in (d) }
//
// Variables are named a, b, ..., z, ba, bb, ... in order of definition;
// rank-0 concrete constants are printed inline as literals (`1.0:f32[]`),
// other constants are listed before the `;`. A graph-valued parameter (a
// fused region, a loop body) is printed nested, continuing the names.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/format.hpp"
#include "eqx/ir/graph.hpp"

namespace eqx {

namespace detail {

/// JAX's variable names: 0 -> a, 25 -> z, 26 -> ba, ...
inline std::string var_name(std::size_t n) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('a' + n % 26));
    n /= 26;
  } while (n);
  return s;
}

/// A rank-0 concrete constant as a literal, e.g. "0.5:f32[]".
inline std::string literal_text(const Array& a) {
  std::string v = visit_dtype(a.dtype(), [&](auto tag) -> std::string {
    using T = decltype(tag);
    T x = a.item<T>();
    if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
    else if constexpr (std::is_floating_point_v<T>) {
      std::string t = fmt::format("{}", x);
      if (t.find_first_of(".eni") == std::string::npos) t += ".0";
      return t;
    } else return fmt::format("{}", x);
  });
  return v + ":" + std::string(short_name(a.dtype())) + "[]";
}

class GraphPrinter {
 public:
  std::string print(const Graph& g, const std::string& indent) {
    std::vector<std::string> names(g.types.size());
    auto define = [&](Var v) -> std::string {
      names[v] = var_name(counter_++);
      return names[v] + ":" + g.types[v].str();
    };
    VarSources sources(g);
    std::string out = "{ lambda ";
    for (std::size_t i = 0; i < g.constvars.size(); ++i) {
      const Array& c = g.consts[i];
      if (!c.is_abstract() && c.ndim() == 0) names[g.constvars[i]] = literal_text(c);
      else out += define(g.constvars[i]) + " ";
    }
    out += ";";
    for (Var v : g.inputs) out += " " + define(v);
    out += ". let";
    for (const Equation& eq : g.equations) {
      out += "\n" + indent + "    ";
      // (Appending piecewise: GCC 12 warns falsely on `(i ? " " : "") + std::string`.)
      for (std::size_t i = 0; i < eq.outputs.size(); ++i) {
        if (i) out += ' ';
        out += define(eq.outputs[i]);
      }
      out += " = " + std::string(eq.prim->name()) + params_text(eq.params, indent + "    ");
      for (Var v : eq.inputs) out += " " + names[v];
    }
    out += "\n" + indent + "  in (";
    for (std::size_t i = 0; i < g.outputs.size(); ++i) {
      if (i) out += ", ";
      out += names[g.outputs[i]];
    }
    return out + ") }";
  }

 private:
  std::string params_text(const Params& params, const std::string& indent) {
    if (params.items().empty()) return "";
    std::string out = "[";
    bool first = true;
    for (const auto& [name, value] : params.items()) {
      out += (first ? "" : " ") + std::string(name) + "=" + value_text(value, indent);
      first = false;
    }
    return out + "]";
  }

  std::string value_text(const ParamValue& value, const std::string& indent) {
    return std::visit(
        [&](const auto& v) -> std::string {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) return v ? "true" : "false";
          else if constexpr (std::is_same_v<V, DType>) return std::string(dtype_name(v));
          else if constexpr (std::is_same_v<V, std::string>) return v;
          else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>)
            return v.size() == 1 ? fmt::format("({},)", v[0]) : fmt::format("({})", fmt::join(v, ", "));
          else if constexpr (std::is_same_v<V, GraphRef>) return v ? print(*v, indent) : "None";
          else if constexpr (std::is_same_v<V, OpaqueRef>) return v ? v->str() : "None";
          else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
            std::string out = "(";
            for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", '" : "'") + v[i] + "'";
            return out + (v.size() == 1 ? ",)" : ")");
          }
          else if constexpr (std::is_same_v<V, std::vector<GraphRef>>) {
            std::string out = "(";
            for (const GraphRef& g : v) out += "\n" + indent + "  " + (g ? print(*g, indent + "  ") : "None");
            return out + ")";
          }
          else return fmt::format("{}", v);
        },
        value);
  }

  std::size_t counter_ = 0;
};

}  // namespace detail

/// The jaxpr-like text of a graph. Usage: `std::cout << eqx::to_string(graph);`
inline std::string to_string(const Graph& g) { return detail::GraphPrinter{}.print(g, ""); }

}  // namespace eqx

template <>
struct fmt::formatter<eqx::Graph> : fmt::formatter<std::string_view> {
  auto format(const eqx::Graph& g, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::to_string(g), ctx);
  }
};
