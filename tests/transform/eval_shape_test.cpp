// filter_eval_shape: output shapes, dtypes and static leaves with nothing
// run or allocated; shape-only Arrays in and out; a skeleton model that
// tree_deserialise_leaves loads into; the errors when a value is needed.

#include <catch2/catch.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_eval_shape_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

std::string type_of(const Array& a) { return eqx::type_string(a); }

struct Summary {
  Array total;
  std::vector<Array> per_row;
  std::string label;
  int rows;
};

}  // namespace

TEST_CASE("filter_eval_shape: shapes and dtypes of matmul, reductions and casts, with nothing run", "[eval_shape]") {
  const Array a = eqx_test::seq({2, 3}), b = eqx_test::seq({3, 4});
  const Array y = eqx::filter_eval_shape([](const Array& p, const Array& q) { return eqx::matmul(p, q); }, a, b);
  CHECK(type_of(y) == "f32[2,4]");
  CHECK(y.is_abstract());
  CHECK(eqx::to_string(y) == "ShapeDtypeStruct<f32[2,4]>");

  // Reductions and casts, returned in a pytree with static leaves passed through.
  auto summarise = [](const Array& x, const std::string& name) {
    Summary s{eqx::sum(x), {}, name + "!", static_cast<int>(x.shape()[0])};
    s.per_row.push_back(eqx::argmax(x, 1));
    s.per_row.push_back(eqx::astype(eqx::max(x, {1}, true), eqx::float64));
    return s;
  };
  const Summary s = eqx::filter_eval_shape(summarise, eqx_test::seq<std::int32_t>({3, 5}), std::string("m"));
  CHECK(type_of(s.total) == "i32[]");
  REQUIRE(s.per_row.size() == 2);
  CHECK(type_of(s.per_row[0]) == "i32[3]");
  CHECK(type_of(s.per_row[1]) == "f64[3,1]");
  CHECK(s.label == "m!");
  CHECK(s.rows == 3);

  // The function's kernels never run: a host callback inside it is not called.
  int calls = 0;
  auto with_callback = [&](const Array& x) {
    return eqx::filter_pure_callback(
        [&](const Array& v) {
          ++calls;
          return v;
        },
        eqx::shape_dtype_struct({3}, eqx::float32), x);
  };
  CHECK(type_of(eqx::filter_eval_shape(with_callback, eqx_test::seq({3}))) == "f32[3]");
  CHECK(calls == 0);
  with_callback(eqx_test::seq({3}));  // and eagerly it is
  CHECK(calls == 1);
}

TEST_CASE("filter_eval_shape: shape-only Arrays as arguments, and a model too large to allocate", "[eval_shape]") {
  const Array x = eqx::shape_dtype_struct({5, 2}, eqx::float64);
  CHECK(x.is_abstract());
  CHECK(x.has_value());
  auto f = [](const Array& v, int k) { return std::pair{eqx::transpose(v) * static_cast<double>(k), k + 1}; };
  auto [t, k] = eqx::filter_eval_shape(f, x, 3);
  CHECK(type_of(t) == "f64[2,5]");
  CHECK(k == 4);

  // A first layer of 17 GB: only shapes exist. Nothing could run anyway:
  // every weight derives from the key, which is shape-only, and a kernel on
  // it throws eqx::TraceError before allocating (as calling init shows).
  const std::int64_t huge = 65535;
  auto init = [&](const eqx::random::Key& key) { return eqx::nn::MLP::init(huge, 10, huge, 1, key); };
  const eqx::nn::MLP skeleton = eqx::filter_eval_shape(init, eqx::shape_dtype_struct({2}, eqx::uint32));
  REQUIRE(skeleton.layers.size() == 2);
  CHECK(type_of(skeleton.layers[0].weight) == "f32[65535,65535]");
  CHECK(type_of(skeleton.layers[0].bias) == "f32[65535]");
  CHECK(type_of(skeleton.layers[1].weight) == "f32[10,65535]");
  CHECK(*skeleton.width_size == huge);
  const std::string eager = message_of<eqx::TraceError>([&] { init(eqx::shape_dtype_struct({2}, eqx::uint32)); });
  CHECK(eager.find(": input 0 is a shape-only Array u32[2] (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or "
                   "eqx::shape_dtype_struct), which has no values to compute with") != std::string::npos);
}

TEST_CASE("filter_eval_shape: a skeleton model is a `like` for tree_deserialise_leaves", "[eval_shape]") {
  const eqx::random::Key key = eqx::random::key(7);
  auto init = [](const eqx::random::Key& k) { return eqx::nn::MLP::init(3, 2, 4, 2, k); };
  const eqx::nn::MLP model = init(key);
  std::stringstream file;
  eqx::tree_serialise_leaves(file, model);

  const eqx::nn::MLP like = eqx::filter_eval_shape(init, key);
  for (const Array& leaf : eqx::tree_leaves(like)) CHECK(leaf.is_abstract());
  const eqx::nn::MLP loaded = eqx::tree_deserialise_leaves(file, like);
  const std::vector<Array> want = eqx::tree_leaves(model), got = eqx::tree_leaves(loaded);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(type_of(got[i]) == type_of(want[i]));
    CHECK(got[i].to_vector<float>() == want[i].to_vector<float>());
  }
  check(loaded(eqx::array({1.0f, 2.0f, 3.0f})), {2}, model(eqx::array({1.0f, 2.0f, 3.0f})).to_vector<float>());

  // A skeleton of the wrong size is refused by the loader, naming the leaf.
  const eqx::nn::MLP wider = eqx::filter_eval_shape(
      [](const eqx::random::Key& k) { return eqx::nn::MLP::init(3, 2, 5, 2, k); }, key);
  std::stringstream again;
  eqx::tree_serialise_leaves(again, model);
  CHECK(message_of<eqx::IOError>([&] { eqx::tree_deserialise_leaves(again, wider); }) ==
        "eqx::tree_deserialise_leaves: at .layers[0].weight expected f32[5,3], the file has <f4 shape (4, 3); "
        "the file was written for a model of another structure, or `like` does not match it");
}

TEST_CASE("filter_eval_shape: values cannot be read, in the function or from its result", "[eval_shape]") {
  auto reads = [](const Array& x) { return eqx::array(x.item<float>() + 1.0f); };
  CHECK(message_of<eqx::ConcretizationError>([&] { eqx::filter_eval_shape(reads, eqx::array(1.0f)); }) ==
        "eqx::filter_eval_shape: the function needs a value, and shape evaluation computes none: eqx: item() on an "
        "abstract (traced) Array f32[]: inside eqx::filter_jit and other transformations an Array has no value until "
        "the compiled function runs. Branch on it with eqx::where (elementwise) or eqx::cond, check it with "
        "eqx::error_if, or mark the argument static (pass it as a non-Array leaf) if it really is a compile-time "
        "constant");

  const Array y = eqx::filter_eval_shape([](const Array& x) { return x * 2.0f; }, eqx_test::seq({3}));
  CHECK(message_of<eqx::ConcretizationError>([&] { y.to_vector<float>(); }) ==
        "eqx: to_vector() on a shape-only Array f32[3] (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or "
        "eqx::shape_dtype_struct): it describes an Array and holds no values. Compute the real value (call the function itself), or load it "
        "(eqx::tree_deserialise_leaves with this tree as `like`)");
  CHECK(message_of<eqx::TraceError>([&] { eqx::exp(y); }) ==
        "eqx::exp: input 0 is a shape-only Array f32[3] (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or "
        "eqx::shape_dtype_struct), which has no values to compute with; pass it as an argument of eqx::filter_eval_shape (which traces it), or "
        "use a real Array");
  // Closed over inside a trace, it is refused the same way.
  CHECK(message_of<eqx::TraceError>([&] {
          eqx::filter_jit([&](const Array& x) { return x + y; })(eqx_test::seq({3}));
        }) ==
        "eqx::add: input 1 is a shape-only Array f32[3] (from eqx::filter_eval_shape, eqx::filter_make_jaxpr or "
        "eqx::shape_dtype_struct), which has no values to compute with; pass it as an argument of eqx::filter_eval_shape (which traces it), or "
        "use a real Array");
  CHECK(message_of<eqx::TraceError>([&] { eqx::filter_jit([](const Array& x) { return x; })(y); }) ==
        "eqx::filter_jit: argument leaf [0] is a shape-only Array f32[3] (eqx::shape_dtype_struct / "
        "filter_eval_shape), which has no values to run on; pass a real Array, or use eqx::filter_eval_shape to get "
        "only the output's shapes");
  CHECK(message_of<eqx::ShapeError>([] { eqx::shape_dtype_struct({2, -1}, eqx::float32); }) ==
        "eqx::shape_dtype_struct: negative dimension in shape [2,-1]");
}

}  // namespace transform_eval_shape_test
