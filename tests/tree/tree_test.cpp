// Pytrees by reflection: flatten/unflatten, paths, one level of children,
// tree_map, tree_at, filter/partition/combine, tree_equal, tree_check,
// printing, and eqx::Partial through jit, grad and vmap.

#include <catch2/catch.hpp>

#include <cmath>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <eqx/eqx.hpp>
#include <eqx/tree.hpp>

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace tree_tree_test {

namespace {

/// The what() of the E that f() throws, or "(no exception)" (tests/check.hpp
/// has the same, but this file is also compiled by Clang 14, which lacks
/// the std::source_location that check.hpp uses).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no exception)";
}

struct Linear {
  eqx::Array weight, bias;
};

eqx::Array relu(const eqx::Array& x) { return eqx::maximum(x, 0.0f); }

enum class Mode { train, eval };

struct MLP {
  std::vector<Linear> layers;
  eqx::Array (*activation)(const eqx::Array&);
  int width;
};

struct Everything {
  std::tuple<std::vector<Linear>, std::pair<eqx::Array, double>> nested;
  std::optional<eqx::Array> maybe;
  std::optional<Linear> absent;
  std::map<std::string, eqx::Array> buffers;
  std::tuple<eqx::Array, eqx::Array> pair_of;  // not std::array: see tree/node.hpp
  eqx::Static<std::string> name;
  Mode mode;
};

struct Masked {
  eqx::Array w;
  std::vector<bool> mask;
};

/// A visitor and a builder with a static_leaf of their own: the erased walks
/// would not call it, so they must take the typed ones.
struct OwnStaticLeaf : eqx::detail::ArrayLeafVisitor {
  bool array(const eqx::TreePath&, const eqx::Array&) { return true; }
  template <class X>
  bool static_leaf(const eqx::TreePath&, const X&) {
    return false;
  }
};
struct CopyingBuilder {
  eqx::Array array(const eqx::TreePath&, const eqx::Array& a) { return a; }
  template <class X>
  X static_leaf(const eqx::TreePath&, const X& x) {
    return x;
  }
};

/// A type with private members, made a pytree through eqx::tree_traits.
class Scaled {
 public:
  Scaled(eqx::Array value, float scale) : value_(std::move(value)), scale_(scale) {}
  const eqx::Array& value() const { return value_; }
  float scale() const { return scale_; }

 private:
  eqx::Array value_;
  float scale_;
};

Linear linear(std::int64_t in, std::int64_t out, float fill) {
  return {eqx::full({out, in}, fill), eqx::zeros({out})};
}

MLP mlp() { return {{linear(2, 3, 1.f), linear(3, 1, 2.f)}, relu, 3}; }

Everything everything() {
  return {{{linear(1, 2, 1.f)}, {eqx::array({1.f, 2.f}), 0.5}},
          eqx::array(3),
          std::nullopt,
          {{"z", eqx::ones({2})}, {"a", eqx::zeros({1})}},
          {eqx::array(true), eqx::array(1.0)},
          {"model"},
          Mode::eval};
}

std::vector<std::string> paths_of(const auto& tree) {
  std::vector<std::string> out;
  for (const auto& [path, leaf] : eqx::tree_leaves_with_path(tree)) out.push_back(path.str());
  return out;
}

}  // namespace

}  // namespace tree_tree_test

// Specialisations live in eqx's namespace, outside this file's.
template <>
struct eqx::tree_traits<tree_tree_test::Scaled> {
  using Scaled = tree_tree_test::Scaled;
  static auto flatten(const Scaled& s) { return std::tuple{s.value(), s.scale()}; }
  static Scaled unflatten(std::tuple<eqx::Array, float> c) { return Scaled(std::get<0>(c), std::get<1>(c)); }
  static constexpr std::array<std::string_view, 2> names{"value", "scale"};
};

namespace tree_tree_test {

TEST_CASE("field names and type names come from reflection", "[tree]") {
  STATIC_REQUIRE(eqx::detail::field_names<MLP>[0] == "layers");
  STATIC_REQUIRE(eqx::detail::field_names<MLP>[1] == "activation");
  STATIC_REQUIRE(eqx::detail::field_names<MLP>[2] == "width");
  STATIC_REQUIRE(eqx::detail::type_name<MLP>() == "MLP");
  STATIC_REQUIRE(eqx::detail::node_kind_v<MLP> == eqx::detail::NodeKind::aggregate);
  STATIC_REQUIRE(eqx::detail::node_kind_v<std::string> == eqx::detail::NodeKind::static_leaf);
  STATIC_REQUIRE(eqx::detail::node_kind_v<Scaled> == eqx::detail::NodeKind::custom);
  STATIC_REQUIRE(eqx::detail::node_kind_v<eqx::Static<int>> == eqx::detail::NodeKind::static_field);
}

TEST_CASE("tree_leaves walks depth first in declaration and key order", "[tree]") {
  CHECK(paths_of(mlp()) ==
        std::vector<std::string>{".layers[0].weight", ".layers[0].bias", ".layers[1].weight", ".layers[1].bias"});
  CHECK(paths_of(everything()) == std::vector<std::string>{".nested[0][0].weight", ".nested[0][0].bias",
                                                           ".nested[1][0]", ".maybe", ".buffers['a']",
                                                           ".buffers['z']", ".pair_of[0]", ".pair_of[1]"});
  auto leaves = eqx::tree_leaves(mlp());
  REQUIRE(leaves.size() == 4);
  CHECK(leaves[2].shape() == eqx::Shape{1, 3});
  CHECK(leaves[2].to_vector<float>() == std::vector<float>{2, 2, 2});
  CHECK(paths_of(Scaled(eqx::ones({2}), 2.f)) == std::vector<std::string>{".value"});
  // std::array is a node of its own (not as a struct field: Boost.PFR 1.81 miscounts it there).
  std::array<eqx::Array, 2> arr{eqx::ones({1}), eqx::zeros({2})};
  CHECK(paths_of(arr) == std::vector<std::string>{"[0]", "[1]"});
}

TEST_CASE("flatten then unflatten rebuilds the same tree", "[tree]") {
  Everything e = everything();
  auto [leaves, def] = eqx::tree_flatten(e);
  CHECK(def.num_leaves() == 8);
  Everything back = def.unflatten(leaves);
  CHECK(eqx::tree_equal(back, e));
  CHECK(back.name.get() == "model");
  CHECK(back.mode == Mode::eval);
  CHECK(std::get<1>(back.nested).second == 0.5);
  CHECK_FALSE(back.absent.has_value());

  // New leaves in the same slots.
  for (auto& l : leaves) l = eqx::zeros_like(l);
  Everything zeroed = def.unflatten(leaves);
  CHECK(zeroed.buffers.at("z").to_vector<float>() == std::vector<float>{0, 0});

  leaves.pop_back();
  CHECK_THROWS_AS(def.unflatten(leaves), eqx::ValueError);
  CHECK_THROWS_WITH(def.unflatten(leaves), Catch::Contains("the tree has 8 Array leaves but 7 were given"));

  Scaled s(eqx::array({1.f, 2.f}), 3.f);
  auto [sl, sdef] = eqx::tree_flatten(s);
  Scaled s2 = sdef.unflatten({eqx::array({5.f, 6.f})});
  CHECK(s2.scale() == 3.f);
  CHECK(s2.value().to_vector<float>() == std::vector<float>{5, 6});
}

/// "path: child" for each child tree_for_each_child visits, printed on one line.
template <class T>
std::vector<std::string> children_of(const T& tree) {
  std::vector<std::string> out;
  eqx::tree_for_each_child(tree, [&](const eqx::TreePath& p, const auto& child) {
    out.push_back(p.str() + ": " + eqx::tree_pformat(child, {.width = 1000}));
  });
  return out;
}

TEST_CASE("tree_flatten_one_level and tree_for_each_child give the immediate children", "[tree]") {
  // A struct: its fields, not their leaves.
  MLP m = mlp();
  CHECK(children_of(m) == std::vector<std::string>{
                            ".layers: [Linear(weight=f32[3,2], bias=f32[3]), Linear(weight=f32[1,3], bias=f32[1])]",
                            ".activation: <function>", ".width: 3"});
  auto [layers, activation, width] = eqx::tree_flatten_one_level(m);
  STATIC_REQUIRE(std::is_same_v<decltype(layers), std::vector<Linear>>);
  REQUIRE(layers.size() == 2);
  CHECK(eqx::tree_equal(layers[1], m.layers[1]));
  CHECK(activation == &relu);
  CHECK(width == 3);

  // A vector: its elements, each a whole sub-tree.
  CHECK(children_of(m.layers) == std::vector<std::string>{"[0]: Linear(weight=f32[3,2], bias=f32[3])",
                                                           "[1]: Linear(weight=f32[1,3], bias=f32[1])"});
  std::vector<Linear> elements = eqx::tree_flatten_one_level(m.layers);
  CHECK(elements.size() == 2);
  CHECK(eqx::tree_equal(elements[0], m.layers[0]));

  // A tuple (and a pair): its elements, one level down only.
  std::tuple<eqx::Array, std::pair<eqx::Array, double>, int> t{eqx::array({1.f, 2.f}), {eqx::ones({3}), 0.5}, 7};
  CHECK(children_of(t) ==
        std::vector<std::string>{"[0]: f32[2]", "[1]: (f32[3], 0.5)", "[2]: 7"});
  auto [first, pair, seven] = eqx::tree_flatten_one_level(t);
  CHECK(first.to_vector<float>() == std::vector<float>{1, 2});
  STATIC_REQUIRE(std::is_same_v<decltype(eqx::tree_flatten_one_level(pair)), std::tuple<eqx::Array, double>>);
  CHECK(std::get<1>(eqx::tree_flatten_one_level(pair)) == 0.5);
  CHECK(seven == 7);

  // A leaf is its own only child (Equinox: [leaf]), at the empty path.
  eqx::Array leaf = eqx::array({4.f, 5.f});
  CHECK(children_of(leaf) == std::vector<std::string>{": f32[2]"});
  auto [itself] = eqx::tree_flatten_one_level(leaf);
  CHECK(itself.same_storage(leaf));
  CHECK(std::get<0>(eqx::tree_flatten_one_level(2.5)) == 2.5);

  // Maps by key order, optionals at their own path, custom nodes by their names.
  Everything e = everything();
  CHECK(children_of(e.buffers) == std::vector<std::string>{"['a']: f32[1]", "['z']: f32[2]"});
  std::vector<eqx::Array> values = eqx::tree_flatten_one_level(e.buffers);
  CHECK(values[1].to_vector<float>() == std::vector<float>{1, 1});
  CHECK(children_of(e.maybe) == std::vector<std::string>{": i32[]"});
  CHECK(eqx::tree_flatten_one_level(e.absent).empty());
  CHECK(children_of(Scaled(eqx::ones({2}), 2.f)) ==
        std::vector<std::string>{".value: f32[2]", ".scale: 2.0"});
  auto [value, scale] = eqx::tree_flatten_one_level(Scaled(eqx::ones({2}), 2.f));
  CHECK(scale == 2.f);
  CHECK(value.shape() == eqx::Shape{2});
  CHECK(children_of(e) ==
        std::vector<std::string>{".nested: ([Linear(weight=f32[2,1], bias=f32[2])], (f32[2], 0.5))", ".maybe: i32[]",
                                 ".absent: None", ".buffers: {'a': f32[1], 'z': f32[2]}", ".pair_of: (bool[], f64[])",
                                 ".name: 'model'", ".mode: Mode(1)"});
}

TEST_CASE("TreeDefs compare structure and static leaves, and hash alike", "[tree]") {
  MLP a = mlp(), b = mlp();
  b.layers[0].weight = eqx::zeros({7, 7});  // leaf values and shapes are not structure
  CHECK(eqx::tree_structure(a) == eqx::tree_structure(b));
  CHECK(eqx::tree_structure(a).hash() == eqx::tree_structure(b).hash());
  MLP c = mlp();
  c.width = 4;  // a static leaf
  CHECK_FALSE(eqx::tree_structure(a) == eqx::tree_structure(c));
  MLP d = mlp();
  d.layers.pop_back();  // a container size
  CHECK_FALSE(eqx::tree_structure(a) == eqx::tree_structure(d));
  MLP e = mlp();
  e.layers[1].bias = eqx::Array{};  // None is not a leaf
  CHECK_FALSE(eqx::tree_structure(a) == eqx::tree_structure(e));
  CHECK(eqx::tree_structure(e).num_leaves() == 3);

  Everything x = everything(), y = everything();
  y.name.value = "other";  // Static fields are part of the structure
  CHECK_FALSE(eqx::tree_structure(x) == eqx::tree_structure(y));
  CHECK(eqx::tree_leaves(x).size() == eqx::tree_leaves(y).size());
}

TEST_CASE("tree_map applies to corresponding leaves and checks structure", "[tree]") {
  MLP m = mlp();
  MLP doubled = eqx::tree_map([](const eqx::Array& x) { return x * 2.0f; }, m);
  CHECK(doubled.layers[1].weight.to_vector<float>() == std::vector<float>{4, 4, 4});
  CHECK(doubled.width == 3);
  CHECK(doubled.activation == &relu);
  CHECK(m.layers[1].weight.to_vector<float>() == std::vector<float>{2, 2, 2});  // input untouched

  MLP sum = eqx::tree_map([](const eqx::Array& x, const eqx::Array& y) { return x + y; }, m, doubled);
  CHECK(sum.layers[0].weight.to_vector<float>() == std::vector<float>(6, 3.f));

  MLP shorter = mlp();
  shorter.layers.pop_back();
  CHECK_THROWS_AS(eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, m, shorter),
                  eqx::TreeStructureError);
  CHECK_THROWS_WITH(eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, m, shorter),
                    Catch::Contains("at .layers: lists of different lengths (2 vs 1)"));

  MLP holes = mlp();
  holes.layers[0].bias = eqx::Array{};
  CHECK_THROWS_AS(eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, m, holes),
                  eqx::TreeStructureError);
  CHECK_THROWS_WITH(eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, m, holes),
                    Catch::Contains(".layers[0].bias another tree has an empty Array (None)"));
  MLP mapped_holes = eqx::tree_map([](const eqx::Array& x) { return x + 1.0f; }, holes);
  CHECK_FALSE(mapped_holes.layers[0].bias.has_value());

  auto with_path = eqx::tree_map_with_path(
      [](const eqx::TreePath& p, const eqx::Array& x) { return p.starts_with(".layers[1]") ? x * 0.0f : x; }, m);
  CHECK(with_path.layers[1].weight.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(with_path.layers[0].weight.to_vector<float>() == std::vector<float>(6, 1.f));
}

TEST_CASE("tree_map walks several trees in lockstep through every kind of node", "[tree]") {
  // Three trees of every container kind; static leaves come from the first tree.
  Everything a = everything(), b = everything(), c = everything();
  b.name = {"other"};
  b.mode = Mode::train;
  Everything sum = eqx::tree_map(
      [](const eqx::Array& x, const eqx::Array& y, const eqx::Array& z) {
        return x.dtype() == eqx::bool_ ? x : x + y + z;
      },
      a, b, c);
  CHECK(sum.name.get() == "model");
  CHECK(sum.mode == Mode::eval);
  CHECK(std::get<1>(sum.nested).second == 0.5);
  CHECK(std::get<0>(sum.nested)[0].weight.to_vector<float>() == std::vector<float>{3, 3});
  CHECK(std::get<1>(sum.nested).first.to_vector<float>() == std::vector<float>{3, 6});
  CHECK(sum.maybe->item<int>() == 9);
  CHECK_FALSE(sum.absent.has_value());
  CHECK(sum.buffers.at("z").to_vector<float>() == std::vector<float>{3, 3});
  CHECK(std::get<1>(sum.pair_of).item<double>() == 3.0);

  // Static elements of a list (std::vector<bool> has no element to point at) come from the first tree.
  Masked m1{eqx::array({1.f, 2.f}), {true, false}}, m2{eqx::array({3.f, 4.f}), {false, false}};
  Masked m3 = eqx::tree_map([](const eqx::Array& x, const eqx::Array& y) { return x * y; }, m1, m2);
  CHECK(m3.w.to_vector<float>() == std::vector<float>{3, 8});
  CHECK(m3.mask == std::vector<bool>{true, false});
  m2.mask.push_back(true);
  CHECK_THROWS_WITH(eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, m1, m2),
                    Catch::Contains("at .mask: lists of different lengths (2 vs 3)"));

  // A custom node: its children are walked in lockstep, its static child comes from the first tree.
  Scaled s = eqx::tree_map([](const eqx::Array& x, const eqx::Array& y) { return x - y; },
                           Scaled(eqx::array({5.f, 7.f}), 2.f), Scaled(eqx::array({1.f, 2.f}), 4.f));
  CHECK(s.value().to_vector<float>() == std::vector<float>{4, 5});
  CHECK(s.scale() == 2.f);

  auto first = [](const eqx::Array& x, const eqx::Array&) { return x; };
  Everything no_maybe = everything();
  no_maybe.maybe.reset();
  CHECK_THROWS_WITH(eqx::tree_map(first, a, no_maybe),
                    Catch::Contains("at .maybe: an empty optional where the other tree has a value"));
  Everything other_key = everything();
  other_key.buffers.erase("a");
  other_key.buffers["b"] = eqx::zeros({1});
  CHECK_THROWS_WITH(eqx::tree_map(first, a, other_key), Catch::Contains("at .buffers: maps with different keys"));
  Everything fewer_keys = everything();
  fewer_keys.buffers.erase("a");
  CHECK_THROWS_WITH(eqx::tree_map(first, a, fewer_keys), Catch::Contains("at .buffers: maps with different keys"));
  Everything longer = everything();
  std::get<0>(longer.nested).push_back(linear(1, 2, 0.f));
  CHECK_THROWS_WITH(eqx::tree_map(first, a, longer),
                    Catch::Contains("at .nested[0]: lists of different lengths (1 vs 2)"));
}

TEST_CASE("tree walks: which visitors and builders take the shared walk, and nine trees in lockstep", "[tree]") {
  STATIC_REQUIRE(eqx::detail::array_leaf_visitor<eqx::detail::LeafCollector<false>>);
  STATIC_REQUIRE(eqx::detail::erasable_visitor<eqx::detail::LeafCollector<false>>);
  STATIC_REQUIRE(eqx::detail::array_leaf_builder<eqx::detail::SkeletonBuilder>);
  STATIC_REQUIRE(eqx::detail::erasable_builder<eqx::detail::SkeletonBuilder>);
  STATIC_REQUIRE_FALSE(eqx::detail::array_leaf_builder<eqx::detail::LeafFiller>);  // the jit call's outputs: typed
  STATIC_REQUIRE_FALSE(eqx::detail::array_leaf_visitor<eqx::debug::detail::SignatureRecorder>);
  STATIC_REQUIRE_FALSE(eqx::detail::erasable_visitor<eqx::debug::detail::SignatureRecorder>);
  STATIC_REQUIRE_FALSE(eqx::detail::erasable_visitor<OwnStaticLeaf>);
  STATIC_REQUIRE_FALSE(eqx::detail::erasable_builder<CopyingBuilder>);

  // Nine trees in lockstep.
  MLP m = mlp();
  MLP nine = eqx::tree_map([](const auto&... x) { return (x + ...); }, m, m, m, m, m, m, m, m, m);
  CHECK(nine.layers[1].weight.to_vector<float>() == std::vector<float>{18, 18, 18});
  CHECK(nine.width == 3);
  // Both walks name the first length that differs.
  MLP shorter = mlp(), longer = mlp();
  shorter.layers.pop_back();
  longer.layers.push_back(linear(1, 1, 0.f));
  auto first = [](const auto& x, const auto&...) { return x; };
  CHECK_THROWS_WITH(eqx::tree_map(first, m, shorter, longer),
                    Catch::Contains("at .layers: lists of different lengths (2 vs 1)"));
  CHECK_THROWS_WITH(eqx::tree_map(first, m, m, m, m, m, m, m, shorter, longer),
                    Catch::Contains("at .layers: lists of different lengths (2 vs 1)"));
  // Empty containers in lockstep.
  Everything e = everything(), f = everything();
  std::get<0>(e.nested).clear();
  std::get<0>(f.nested).clear();
  e.buffers.clear();
  f.buffers.clear();
  Everything g = eqx::tree_map([](const eqx::Array& x, const eqx::Array&) { return x; }, e, f);
  CHECK(std::get<0>(g.nested).empty());
  CHECK(g.buffers.empty());
}

TEST_CASE("tree_at replaces sub-modules, list elements, static fields and several parts", "[tree]") {
  MLP m = mlp();
  MLP a = eqx::tree_at([](MLP& t) -> auto& { return t.layers[1]; }, m, linear(3, 1, 9.f));
  CHECK(a.layers[1].weight.to_vector<float>() == std::vector<float>{9, 9, 9});
  CHECK(m.layers[1].weight.to_vector<float>() == std::vector<float>{2, 2, 2});

  MLP b = eqx::tree_at([](MLP& t) -> auto& { return t.width; }, m, 64);
  CHECK(b.width == 64);
  CHECK(m.width == 3);

  MLP c = eqx::tree_at([](MLP& t) { return std::tie(t.width, t.layers[0].bias); }, m,
                       std::make_tuple(5, eqx::ones({3})));
  CHECK(c.width == 5);
  CHECK(c.layers[0].bias.to_vector<float>() == std::vector<float>{1, 1, 1});

  MLP d = eqx::tree_at([](MLP& t) -> auto& { return t.layers[0].weight; }, m,
                       eqx::replace_fn([](const eqx::Array& w) { return w * 10.0f; }));
  CHECK(d.layers[0].weight.to_vector<float>() == std::vector<float>(6, 10.f));

  MLP e = eqx::tree_at([](MLP& t) -> auto& { return t.layers; }, m, std::vector<Linear>{linear(2, 1, 4.f)});
  CHECK(e.layers.size() == 1);

  MLP outside = mlp();
  CHECK_THROWS_AS(eqx::tree_at([&](MLP&) -> auto& { return outside.width; }, m, 1), eqx::ValueError);
  CHECK_THROWS_WITH(eqx::tree_at([&](MLP&) -> auto& { return outside.width; }, m, 1),
                    Catch::Contains("`where` returned a reference to something outside the tree"));
}

TEST_CASE("filter, partition and combine", "[tree]") {
  Everything e = everything();
  auto [floats, rest] = eqx::partition(e, eqx::is_inexact_array);
  CHECK(paths_of(floats) == std::vector<std::string>{".nested[0][0].weight", ".nested[0][0].bias", ".nested[1][0]",
                                                     ".buffers['a']", ".buffers['z']", ".pair_of[1]"});
  CHECK(paths_of(rest) == std::vector<std::string>{".maybe", ".pair_of[0]"});
  CHECK(floats.name.get() == "model");  // static leaves stay in both halves
  CHECK(rest.mode == Mode::eval);
  CHECK(eqx::tree_equal(eqx::combine(floats, rest), e));
  CHECK(eqx::tree_equal(eqx::combine(rest, floats), e));

  // Freeze the first layer: a predicate on the path.
  MLP m = mlp();
  auto trainable = eqx::filter(m, [](const eqx::TreePath& p, const eqx::Array&) { return !p.starts_with(".layers[0]"); });
  CHECK(paths_of(trainable) == std::vector<std::string>{".layers[1].weight", ".layers[1].bias"});
  auto frozen = eqx::filter(m, [](const eqx::TreePath& p, const eqx::Array&) { return !p.starts_with(".layers[0]"); },
                            /*inverse=*/true);
  CHECK(paths_of(frozen) == std::vector<std::string>{".layers[0].weight", ".layers[0].bias"});
  CHECK(eqx::tree_equal(eqx::combine(trainable, frozen), m));
  CHECK(eqx::tree_leaves(eqx::filter(m, eqx::is_array)).size() == 4);
}

TEST_CASE("filter and partition with a filter_spec tree, as Equinox's frozen-layer example", "[tree]") {
  MLP m = mlp();
  // false everywhere, then true at the last layer (a non-const spec too: it must not be taken for a predicate).
  MLP spec = eqx::tree_map([](const eqx::Array&) { return eqx::array(false); }, m);
  spec = eqx::tree_at([](MLP& t) { return std::tie(t.layers.back().weight, t.layers.back().bias); }, spec,
                      std::tuple{eqx::array(true), eqx::array(true)});
  auto [diff, rest] = eqx::partition(m, spec);
  CHECK(paths_of(diff) == std::vector<std::string>{".layers[1].weight", ".layers[1].bias"});
  CHECK(paths_of(rest) == std::vector<std::string>{".layers[0].weight", ".layers[0].bias"});
  CHECK(eqx::tree_equal(eqx::combine(diff, rest), m));
  CHECK(diff.width == m.width);  // static leaves stay in both halves
  // A None spec leaf selects nothing.
  spec.layers[1].bias = eqx::Array{};
  CHECK(paths_of(eqx::filter(m, spec)) == std::vector<std::string>{".layers[1].weight"});
  CHECK(paths_of(eqx::filter(m, spec, /*inverse=*/true)) ==
        std::vector<std::string>{".layers[0].weight", ".layers[0].bias", ".layers[1].bias"});
  // A spec leaf that is not a bool scalar.
  spec.layers[0].weight = eqx::array({1.f, 0.f});
  CHECK(message_of<eqx::DTypeError>([&] { eqx::filter(m, spec); }) ==
        "eqx::filter: the filter_spec leaf at .layers[0].weight is f32[2]; a filter_spec holds eqx::array(true) or "
        "eqx::array(false) (or None) at each leaf");
  // A traced spec (passed into the jitted function instead of closed over).
  spec.layers[0].weight = eqx::array(false);
  auto jitted = eqx::filter_jit([](const MLP& model, const MLP& s) { return eqx::filter(model, s); });
  CHECK(message_of<eqx::ConcretizationError>([&] { jitted(m, spec); }) ==
        "eqx::filter: the filter_spec leaf at .layers[0].weight is traced; build the filter_spec outside the jitted "
        "function, or close over it");
}

TEST_CASE("tree_equal compares structure, statics, shapes, dtypes and values", "[tree]") {
  CHECK(eqx::tree_equal(mlp(), mlp()));
  MLP v = mlp();
  v.layers[0].bias = eqx::array({0.f, 0.f, 1e-30f});
  CHECK_FALSE(eqx::tree_equal(mlp(), v));
  MLP dt = mlp();
  dt.layers[0].bias = eqx::zeros({3}, eqx::float64);
  CHECK_FALSE(eqx::tree_equal(mlp(), dt));
  MLP s = mlp();
  s.width = 2;
  CHECK_FALSE(eqx::tree_equal(mlp(), s));
  MLP n = mlp();
  n.layers.pop_back();
  CHECK_FALSE(eqx::tree_equal(mlp(), n));
}

TEST_CASE("tree_equal with tolerances is NumPy's allclose on float leaves, exact elsewhere", "[tree]") {
  // References from NumPy 1.24 (a is the first tree, b the second):
  //   a = np.float32([1, 2, 100]); b = np.float32([1.000001, 2, 100.0005])
  //   np.allclose(a, b, rtol=1e-5, atol=1e-8) -> True; rtol=1e-6 -> False
  //   np.allclose(1.0, 2.0, rtol=0.5, atol=0) -> True; np.allclose(2.0, 1.0, rtol=0.5, atol=0) -> False
  //   np.allclose(1.0, 1.5, rtol=0, atol=0.5) -> True; atol=0.49 -> False
  //   np.allclose(nan, nan) -> False; (inf, inf) -> True; (inf, -inf) -> False;
  //   (inf, 1e308, atol=1e308) -> False; (-0.0, 0.0, rtol=0, atol=0) -> True
  MLP a = mlp(), b = mlp();
  a.layers[0].bias = eqx::array({1.f, 2.f, 100.f});
  b.layers[0].bias = eqx::array({1.000001f, 2.f, 100.0005f});
  CHECK_FALSE(eqx::tree_equal(a, b));
  CHECK(eqx::tree_equal(a, b, {.rtol = 1e-5, .atol = 1e-8}));
  CHECK_FALSE(eqx::tree_equal(a, b, {.rtol = 1e-6, .atol = 1e-8}));

  auto close = [](double x, double y, eqx::TreeEqualOptions tol) {
    return eqx::tree_equal(eqx::array(x), eqx::array(y), tol);
  };
  CHECK(close(1.0, 2.0, {.rtol = 0.5}));  // relative to the second tree's value
  CHECK_FALSE(close(2.0, 1.0, {.rtol = 0.5}));
  CHECK(close(1.0, 1.5, {.atol = 0.5}));
  CHECK_FALSE(close(1.0, 1.5, {.atol = 0.49}));
  const double nan = std::nan(""), inf = INFINITY;
  CHECK_FALSE(close(nan, nan, {.rtol = 1e-5}));
  CHECK(eqx::tree_equal(eqx::array(nan), eqx::array(nan)));  // the exact mode compares bits
  CHECK(close(inf, inf, {.rtol = 1e-5}));
  CHECK_FALSE(close(inf, -inf, {.rtol = 1e-5}));
  CHECK_FALSE(close(inf, 1e308, {.atol = 1e308}));
  CHECK(close(-0.0, 0.0, {}));
  CHECK_FALSE(eqx::tree_equal(eqx::array(-0.0), eqx::array(0.0)));

  // Integer and bool leaves stay exact; shapes, dtypes and statics must match.
  CHECK_FALSE(eqx::tree_equal(eqx::array({1, 2}), eqx::array({1, 3}), {.atol = 10}));
  CHECK(eqx::tree_equal(eqx::array({1, 2}), eqx::array({1, 2}), {.atol = 10}));
  CHECK_FALSE(eqx::tree_equal(eqx::array(true), eqx::array(false), {.atol = 10}));
  CHECK_FALSE(eqx::tree_equal(eqx::zeros({2}), eqx::zeros({3}), {.atol = 1}));
  CHECK_FALSE(eqx::tree_equal(eqx::zeros({2}), eqx::zeros({2}, eqx::float64), {.atol = 1}));
  MLP wide = mlp();
  wide.width = 4;
  CHECK_FALSE(eqx::tree_equal(mlp(), wide, {.atol = 1}));

  CHECK(message_of<eqx::ValueError>([&] { eqx::tree_equal(a, b, {.rtol = -1e-5}); }) ==
        "eqx::tree_equal: rtol must be >= 0, got -1e-05; tolerances are magnitudes (|a - b| <= atol + rtol * |b|)");
  CHECK(message_of<eqx::ValueError>([&] { eqx::tree_equal(a, b, {.atol = nan}); }) ==
        "eqx::tree_equal: atol must be >= 0, got nan; tolerances are magnitudes (|a - b| <= atol + rtol * |b|)");

  // Under a trace the values are unknown: a C++ bool cannot be answered, except
  // where shapes or dtypes already differ.
  auto traced_equal = eqx::filter_jit([](const MLP& x, const MLP& y) { return eqx::array(eqx::tree_equal(x, y)); });
  const std::string traced =
      "eqx::tree_equal: the Array leaf at .layers[0].weight is traced (f32[3,2]), so its values are not known yet "
      "and tree_equal cannot answer with a bool; compare outside the jitted function (return the trees from it), "
      "or compare inside it with Array operations (eqx::all(eqx::abs(a - b) <= tol))";
  CHECK(message_of<eqx::ConcretizationError>([&] { traced_equal(a, b); }) == traced);
  auto traced_close = eqx::filter_jit(
      [](const MLP& x, const MLP& y) { return eqx::array(eqx::tree_equal(x, y, {.rtol = 1e-5})); });
  CHECK(message_of<eqx::ConcretizationError>([&] { traced_close(a, b); }) == traced);
  MLP other_shape = mlp();
  other_shape.layers[0].weight = eqx::zeros({2, 2});
  CHECK_FALSE(traced_close(a, other_shape).item<bool>());
}

TEST_CASE("tree_check rejects an Array stored twice", "[tree]") {
  MLP m = mlp();
  CHECK_NOTHROW(eqx::tree_check(m));
  m.layers[1].weight = m.layers[0].weight;  // O(1) copy: the same storage
  CHECK_THROWS_AS(eqx::tree_check(m), eqx::ValueError);
  CHECK_THROWS_WITH(eqx::tree_check(m),
                    Catch::Contains("the same Array storage appears at .layers[0].weight and at .layers[1].weight") &&
                        Catch::Contains("PyTrees, not DAGs"));
}

TEST_CASE("trees print as Equinox prints modules", "[tree][format]") {
  CHECK(fmt::format("{}", mlp()) ==
        "MLP(\n"
        "  layers=[\n"
        "    Linear(weight=f32[3,2], bias=f32[3]),\n"
        "    Linear(weight=f32[1,3], bias=f32[1])\n"
        "  ],\n"
        "  activation=<function>,\n"
        "  width=3\n"
        ")");
  CHECK(eqx::tree_pformat(mlp(), {.width = 200}) ==
        "MLP(layers=[Linear(weight=f32[3,2], bias=f32[3]), Linear(weight=f32[1,3], bias=f32[1])], "
        "activation=<function>, width=3)");
  CHECK(eqx::tree_pformat(linear(1, 2, 1.f), {.width = 200, .short_arrays = 2}) ==
        "Linear(weight=Array([[1.], [1.]], dtype=float32), bias=Array([0., 0.], dtype=float32))");
  Everything e = everything();
  CHECK(eqx::tree_pformat(e, {.width = 400}) ==
        "Everything(nested=([Linear(weight=f32[2,1], bias=f32[2])], (f32[2], 0.5)), maybe=i32[], absent=None, "
        "buffers={'a': f32[1], 'z': f32[2]}, pair_of=(bool[], f64[]), name='model', mode=Mode(1))");
  CHECK(fmt::format("{}", eqx::tree_structure(mlp())) ==
        "PyTreeDef(MLP(layers=[Linear(weight=*, bias=*), Linear(weight=*, bias=*)], activation=<function>, width=3))");
  CHECK(eqx::tree_pformat(Scaled(eqx::ones({2}), 2.f)) == "Scaled(value=f32[2], scale=2.0)");
}

TEST_CASE("tree_pprint writes tree_pformat's text and a newline to a stream", "[tree][format]") {
  std::ostringstream out;
  eqx::tree_pprint(mlp(), {}, out);
  CHECK(out.str() ==
        "MLP(\n"
        "  layers=[\n"
        "    Linear(weight=f32[3,2], bias=f32[3]),\n"
        "    Linear(weight=f32[1,3], bias=f32[1])\n"
        "  ],\n"
        "  activation=<function>,\n"
        "  width=3\n"
        ")\n");
  // The same options as tree_pformat; each call appends.
  out.str("");
  eqx::tree_pprint(linear(1, 2, 1.f), {.width = 30, .indent = 4, .short_arrays = 2}, out);
  eqx::tree_pprint(eqx::array(2.5), {.short_arrays = 1}, out);
  CHECK(out.str() ==
        "Linear(\n"
        "    weight=Array([[1.], [1.]], dtype=float32),\n"
        "    bias=Array([0., 0.], dtype=float32)\n"
        ")\n"
        "Array(2.5, dtype=float64)\n");
  // By default, to std::cout.
  std::ostringstream captured;
  std::streambuf* cout_buffer = std::cout.rdbuf(captured.rdbuf());
  eqx::tree_pprint(Scaled(eqx::ones({2}), 2.f));
  std::cout.rdbuf(cout_buffer);
  CHECK(captured.str() == "Scaled(value=f32[2], scale=2.0)\n");
}

namespace {

/// weight @ x + bias.
eqx::Array affine(const Linear& l, const eqx::Array& x) { return eqx::matmul(l.weight, x) + l.bias; }

/// A module as the function of a Partial: s * a * y.
struct Scale {
  eqx::Array s;
  eqx::Array operator()(const eqx::Array& a, const eqx::Array& y) const { return s * a * y; }
};

Linear small_linear() { return {eqx::array(std::vector<float>{1, 2, 3, 4}, {2, 2}), eqx::array({0.5f, -0.5f})}; }

}  // namespace

TEST_CASE("Partial binds leading arguments and is a pytree of its function and arguments", "[tree][partial]") {
  eqx::Partial p(affine, small_linear());
  const eqx::Array x = eqx::array({1.f, 1.f});
  CHECK(p(x).to_vector<float>() == std::vector<float>{3.5f, 6.5f});  // [1+2+0.5, 3+4-0.5]
  CHECK(paths_of(p) == std::vector<std::string>{".args[0].weight", ".args[0].bias"});
  auto leaves = eqx::tree_leaves(p);
  REQUIRE(leaves.size() == 2);
  CHECK(leaves[0].same_storage(std::get<0>(p.args).weight));
  // A module as the function: its Arrays come first, under .func.
  eqx::Partial q(Scale{eqx::array(2.f)}, eqx::array({1.f, 2.f}));
  CHECK(paths_of(q) == std::vector<std::string>{".func.s", ".args[0]"});
  CHECK(q(eqx::array({3.f, 4.f})).to_vector<float>() == std::vector<float>{6, 16});
  CHECK(eqx::tree_pformat(q) == "Partial(func=Scale(s=f32[]), args=(f32[2]))");
  CHECK(eqx::tree_pformat(p) == "Partial(func=<function>, args=(Linear(weight=f32[2,2], bias=f32[2])))");
  // Flatten and unflatten rebuild it; one level down are the function and the arguments.
  auto [flat, def] = eqx::tree_flatten(q);
  flat[0] = eqx::array(10.f);
  CHECK(def.unflatten(flat)(eqx::array({3.f, 4.f})).to_vector<float>() == std::vector<float>{30, 80});
  CHECK(children_of(q) == std::vector<std::string>{".func: Scale(s=f32[])", ".args: (f32[2])"});
  CHECK(eqx::tree_equal(q, eqx::Partial(Scale{eqx::array(2.f)}, eqx::array({1.f, 2.f}))));
  CHECK_FALSE(eqx::tree_equal(q, eqx::Partial(Scale{eqx::array(2.f)}, eqx::array({1.f, 2.5f}))));
}

TEST_CASE("Partial under filter_jit: its Arrays are inputs of the compiled function", "[tree][partial]") {
  const eqx::Array x = eqx::array({1.f, 1.f});
  eqx::Partial p(affine, small_linear());
  auto jitted = eqx::filter_jit(p);
  CHECK(jitted(x).to_vector<float>() == affine(small_linear(), x).to_vector<float>());
  CHECK(jitted(eqx::array({2.f, -1.f})).to_vector<float>() == std::vector<float>{0.5f, 1.5f});  // [2-2+.5, 6-4-.5]
  // Passed as an argument: a Partial with other weights of the same types reuses the plan.
  auto call = eqx::filter_jit([](const auto& fn, const eqx::Array& v) { return fn(v); });
  CHECK(call(p, x).to_vector<float>() == std::vector<float>{3.5f, 6.5f});
  Linear doubled{eqx::array(std::vector<float>{2, 4, 6, 8}, {2, 2}), eqx::array({1.f, -1.f})};
  CHECK(call(eqx::Partial(affine, doubled), x).to_vector<float>() == std::vector<float>{7.f, 13.f});
  CHECK(eqx::debug::get_num_traces(call) == 1);
  CHECK(call.plan(p, x).graph().inputs.size() == 3);  // weight, bias, x
}

TEST_CASE("Partial under filter_grad: gradients for the bound function's and arguments' Arrays", "[tree][partial]") {
  // L = sum((W x + b)^2): dL/dW = 2 y x^T, dL/db = 2 y, with y = W x + b = [3.5, 6.5] at x = [1, 1].
  auto loss = [](const auto& fn, const eqx::Array& v) { return eqx::sum(eqx::square(fn(v))); };
  auto grads = eqx::filter_grad(loss)(eqx::Partial(affine, small_linear()), eqx::array({1.f, 1.f}));
  STATIC_REQUIRE(std::is_same_v<decltype(grads), eqx::Partial<eqx::Array (*)(const Linear&, const eqx::Array&), Linear>>);
  CHECK(std::get<0>(grads.args).weight.to_vector<float>() == std::vector<float>{7, 7, 13, 13});
  CHECK(std::get<0>(grads.args).bias.to_vector<float>() == std::vector<float>{7, 13});
  // A module as the function: L = sum(s * a * y); dL/ds = sum(a * y), dL/da = s * y.
  auto sum_loss = [](const auto& fn, const eqx::Array& y) { return eqx::sum(fn(y)); };
  auto g = eqx::filter_grad(sum_loss)(eqx::Partial(Scale{eqx::array(2.0)}, eqx::array({1.0, 2.0})),
                                      eqx::array({3.0, 4.0}));
  CHECK(g.func.s.item<double>() == 11.0);
  CHECK(std::get<0>(g.args).to_vector<double>() == std::vector<double>{6, 8});
  // The same against float64 central differences in s.
  const double h = 1e-6;
  auto at = [&](double s) {
    return sum_loss(eqx::Partial(Scale{eqx::array(s)}, eqx::array({1.0, 2.0})), eqx::array({3.0, 4.0})).item<double>();
  };
  CHECK(g.func.s.item<double>() == Approx((at(2.0 + h) - at(2.0 - h)) / (2 * h)).epsilon(1e-8));
}

}  // namespace tree_tree_test
