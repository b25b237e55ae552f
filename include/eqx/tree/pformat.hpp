#pragma once
// Printing pytrees as Equinox does:
//
//   MLP(layers=[Linear(weight=f32[64,2], bias=f32[64]), ...], activation=<function>, width=64)
//
// A node that does not fit in the line width is broken over several lines,
// one child per line, indented. `fmt::format("{}", model)` uses the defaults;
// tree_pprint writes the same text and a newline to a stream.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iostream>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/pfr/core.hpp>
#include <fmt/format.h>

#include "eqx/core/format.hpp"
#include "eqx/tree/flatten.hpp"
#include "eqx/tree/walk.hpp"

namespace eqx {

/// Options of tree_pformat.
struct PformatOptions {
  int width = 80;                   ///< line width before a node is broken over lines
  int indent = 2;                   ///< spaces per nesting level
  std::int64_t short_arrays = 0;    ///< show the values of Arrays with at most this many elements
  bool arrays_as_stars = false;     ///< print every Array as "*" (how TreeDefs print)
  /// If set, each Array leaf (None included) prints as what it returns; it
  /// is called once per Array slot, in leaf order.
  std::function<std::string(const Array&)> array_text;
};

namespace detail {

struct DocChild;

/// A printed node: an atom, or a bracketed list of (possibly named) children.
struct Doc {
  std::string text;  // atom text, or the opening ("Linear(", "[", "{")
  std::string close;
  std::vector<DocChild> children;
  bool group = false;

  // Defined below, once DocChild is complete.
  std::size_t flat_size() const;
  void render_flat(std::string& out) const;
  /// `column`: the indentation of the line this node starts on; `prefix`:
  /// how much of that line precedes the node ("weight=").
  void render(std::string& out, int column, const PformatOptions& o, int prefix = 0) const;
};

/// A child with its prefix, such as "weight=" or "'key': ".
struct DocChild {
  std::string prefix;
  Doc doc;
};

inline std::size_t Doc::flat_size() const {
  if (!group) return text.size();
  std::size_t n = text.size() + close.size();
  for (const auto& [prefix, c] : children) n += prefix.size() + c.flat_size() + 2;
  return n;
}
inline void Doc::render_flat(std::string& out) const {
  out += text;
  if (!group) return;
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (i) out += ", ";
    out += children[i].prefix;
    children[i].doc.render_flat(out);
  }
  out += close;
}
// Broken nodes indent their children one level past the line they start on
// (not past their prefix), as Equinox's printer does.
inline void Doc::render(std::string& out, int column, const PformatOptions& o, int prefix) const {
  if (!group || children.empty() || column + prefix + static_cast<int>(flat_size()) <= o.width) {
    render_flat(out);
    return;
  }
  out += text;
  std::string pad(static_cast<std::size_t>(column + o.indent), ' ');
  for (std::size_t i = 0; i < children.size(); ++i) {
    out += '\n' + pad + children[i].prefix;
    children[i].doc.render(out, column + o.indent, o, static_cast<int>(children[i].prefix.size()));
    if (i + 1 < children.size()) out += ',';
  }
  out += '\n' + std::string(static_cast<std::size_t>(column), ' ') + close;
}

inline Doc atom(std::string s) { return Doc{std::move(s), {}, {}, false}; }

inline std::string python_repr(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

inline Doc array_doc(const Array& a, const PformatOptions& o) {
  if (o.array_text) return atom(o.array_text(a));
  if (!a.has_value()) return atom("None");
  if (o.arrays_as_stars) return atom("*");
  if (!a.is_abstract() && a.size() <= o.short_arrays) {
    std::string raw = detail::ArrayPrinter(a).body(), body;
    for (std::size_t i = 0; i < raw.size(); ++i) {  // one line: each newline and its indent become one space
      if (raw[i] != '\n') {
        body += raw[i];
        continue;
      }
      while (i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\n')) ++i;
      body += ' ';
    }
    return atom("Array(" + body + ", dtype=" + std::string(dtype_name(a.dtype())) + ")");
  }
  return atom(type_string(a));
}

/// A scoped enum (`enum class`): printed by its own fmt formatter when it has one.
template <class X>
concept scoped_enum = std::is_enum_v<X> && !std::is_convertible_v<X, std::underlying_type_t<X>>;

template <class X>
Doc static_doc(const X& x) {
  if constexpr (std::is_same_v<X, bool>) return atom(x ? "True" : "False");
  else if constexpr (std::is_floating_point_v<X>) return atom(python_repr(static_cast<double>(x)));
  else if constexpr (std::is_integral_v<X>) return atom(fmt::format("{}", x));
  else if constexpr (std::is_same_v<X, std::string>) return atom("'" + x + "'");
  else if constexpr (std::is_enum_v<X> && !(scoped_enum<X> && fmt::is_formattable<X>::value))
    return atom(std::string(type_name<X>()) + "(" + std::to_string(static_cast<long long>(x)) + ")");
  else if constexpr (std::is_pointer_v<X> && std::is_function_v<std::remove_pointer_t<X>>) return atom("<function>");
  else if constexpr (std::is_empty_v<X> && std::is_invocable_v<X>) return atom("<function>");
  else if constexpr (std::is_class_v<X> && requires { &X::operator(); }) return atom("<function>");  // a lambda
  else if constexpr (fmt::is_formattable<X>::value) return atom(fmt::format("{}", x));
  else if constexpr (std::is_empty_v<X>) return atom("<" + std::string(type_name<X>()) + ">");
  else return atom("<" + std::string(type_name<X>()) + ">");
}

template <class X>
Doc tree_doc_static(const X& x);

template <class T>
Doc tree_doc(const T& node, const PformatOptions& o) {
  require_pytree_node<T>();
  constexpr NodeKind kind = node_kind_v<T>;
  auto group = [](std::string open, std::string close) { return Doc{std::move(open), std::move(close), {}, true}; };
  if constexpr (kind == NodeKind::array) {
    return array_doc(node, o);
  } else if constexpr (kind == NodeKind::static_field) {
    return tree_doc_static(node.value);
  } else if constexpr (kind == NodeKind::static_leaf) {
    return static_doc(node);
  } else if constexpr (kind == NodeKind::custom) {
    Doc d = group(std::string(class_name<T>()) + "(", ")");
    auto children = tree_traits<T>::flatten(node);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (d.children.push_back(DocChild{
           [] {
             if constexpr (named_custom_node<T>) return std::string(tree_traits<T>::names[I]) + "=";
             else return std::string();
           }(),
           tree_doc(std::get<I>(children), o)}),
       ...);
    }(std::make_index_sequence<std::tuple_size_v<decltype(children)>>{});
    return d;
  } else if constexpr (kind == NodeKind::vector || kind == NodeKind::std_array) {
    Doc d = group("[", "]");
    for (const auto& e : node) d.children.push_back(DocChild{"", tree_doc(e, o)});
    return d;
  } else if constexpr (kind == NodeKind::tuple) {
    Doc d = group("(", ")");
    std::apply([&](const auto&... e) { (d.children.push_back(DocChild{"", tree_doc(e, o)}), ...); }, node);
    return d;
  } else if constexpr (kind == NodeKind::optional) {
    return node.has_value() ? tree_doc(*node, o) : atom("None");
  } else if constexpr (kind == NodeKind::string_map) {
    Doc d = group("{", "}");
    for (const auto& [k, v] : node) d.children.push_back(DocChild{"'" + k + "': ", tree_doc(v, o)});
    return d;
  } else {
    Doc d = group(std::string(class_name<T>()) + "(", ")");
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (d.children.push_back(DocChild{std::string(field_name<T, I>) + "=", tree_doc(boost::pfr::get<I>(node), o)}), ...);
    }(std::make_index_sequence<field_count<T>>{});
    return d;
  }
}

/// Static<T> values print as themselves (a static vector prints as a list).
template <class X>
Doc tree_doc_static(const X& x) {
  if constexpr (is_std_vector<X>::value) {
    Doc d{"[", "]", {}, true};
    for (const auto& e : x) d.children.push_back(DocChild{"", tree_doc_static(e)});
    return d;
  } else {
    return static_doc(x);
  }
}

}  // namespace detail

/// `tree` printed as Equinox prints modules; long nodes break over lines.
/// Usage: `fmt::print("{}\n", eqx::tree_pformat(model, {.width = 60, .short_arrays = 4}));`
template <class T>
std::string tree_pformat(const T& tree, const PformatOptions& options = {}) {
  std::string out;
  detail::tree_doc(tree, options).render(out, 0, options);
  return out;
}

/// Writes tree_pformat(tree, options) and a newline to `out` (std::cout by
/// default), as Equinox's tree_pprint prints.
/// Usage: `eqx::tree_pprint(model, {.short_arrays = 4});` or `eqx::tree_pprint(model, {}, log_file);`
template <class T>
void tree_pprint(const T& tree, const PformatOptions& options = {}, std::ostream& out = std::cout) {
  out << tree_pformat(tree, options) << '\n';
}

}  // namespace eqx

/// fmt support for every reflectable struct: `fmt::format("{}", model)`.
template <class T>
  requires(eqx::detail::reflectable_aggregate<T> && !eqx::detail::is_std_array<T>::value)
struct fmt::formatter<T> : fmt::formatter<std::string_view> {
  auto format(const T& tree, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::tree_pformat(tree), ctx);
  }
};

/// TreeDefs print their skeleton with "*" for each Array leaf.
template <class T>
struct fmt::formatter<eqx::TreeDef<T>> : fmt::formatter<std::string_view> {
  auto format(const eqx::TreeDef<T>& def, format_context& ctx) const {
    eqx::PformatOptions o;
    o.arrays_as_stars = true;
    o.width = 1 << 30;  // one line, as JAX prints PyTreeDefs
    std::vector<eqx::Array> placeholders(def.num_leaves(), eqx::array(0.0f));
    return fmt::formatter<std::string_view>::format(
        "PyTreeDef(" + eqx::tree_pformat(def.unflatten(placeholders), o) + ")", ctx);
  }
};
