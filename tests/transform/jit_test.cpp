// filter_jit: results equal eager ones for pytrees in and out; static
// arguments are part of the cache key; retraces are counted and explained;
// a cache hit allocates only its outputs; concurrent calls are safe;
// clear_caches empties every cache; donated buffers hold the outputs.

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

#include "check.hpp"

// ------------------------------------------------ counting allocator hook
// Every heap allocation of this test binary (all replaceable forms of
// operator new, over malloc/free) passes through here; a test arms the
// counter around the code it measures (on its own thread). Global: the
// replacements may not be declared in this file's namespace.
namespace {
thread_local bool g_counting = false;
thread_local std::size_t g_allocations = 0;
void* counted(std::size_t n, std::size_t align) {
  if (g_counting) ++g_allocations;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                              : std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace
void* operator new(std::size_t n) { return counted(n, 0); }
void* operator new[](std::size_t n) { return counted(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted(n, static_cast<std::size_t>(a)); }
// The nothrow forms too: every form must pair with the deletes below (and a
// sanitizer build checks that they do).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted(n, static_cast<std::size_t>(a));
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept { return operator new(n, a, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace transform_jit_test {

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;

namespace {

template <class F>
std::size_t allocations_in(F&& f) {
  g_allocations = 0;
  g_counting = true;
  f();
  g_counting = false;
  return g_allocations;
}

struct Linear {
  Array weight;
  Array bias;
  Array operator()(const Array& x) const { return eqx::matmul(weight, x) + bias; }
};

enum class Activation { relu, tanh };

struct Mlp {
  std::vector<Linear> layers;
  Activation activation;
  Array operator()(const Array& x) const {
    Array h = x;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      h = layers[i](h);
      if (i + 1 < layers.size()) h = activation == Activation::relu ? eqx::maximum(h, 0.0f) : eqx::tanh(h);
    }
    return h;
  }
};

struct OptState {
  std::map<std::string, Array> moments;
  int step;
};

Mlp make_mlp(Activation act) {
  auto k = eqx::random::split_keys(eqx::random::key(0), 4);
  return Mlp{{Linear{eqx::random::normal(k[0], {5, 3}), eqx::random::normal(k[1], {5})},
              Linear{eqx::random::normal(k[2], {2, 5}), eqx::random::normal(k[3], {2})}},
             act};
}

/// A type with private members, made a pytree node by tree_traits; its
/// flatten returns copies (temporaries the jit walk must not point into).
class Scaled {
 public:
  Scaled(Array value, float scale) : value_(std::move(value)), scale_(scale) {}
  const Array& value() const { return value_; }
  float scale() const { return scale_; }

 private:
  Array value_;
  float scale_;
};

}  // namespace

}  // namespace transform_jit_test

// Specialisations live in eqx's namespace, outside this file's.
template <>
struct eqx::tree_traits<transform_jit_test::Scaled> {
  using Scaled = transform_jit_test::Scaled;
  static std::tuple<Array, float> flatten(const Scaled& s) { return {s.value(), s.scale()}; }
  static Scaled unflatten(std::tuple<Array, float> c) { return Scaled(std::get<0>(c), std::get<1>(c)); }
};

namespace transform_jit_test {

/// A node that counts how often a live value (one with a value, not a cached
/// skeleton's empty slot) is flattened: the walks a jitted call makes.
struct Counted {
  Array value;
};
int g_live_flattens = 0;

}  // namespace transform_jit_test

template <>
struct eqx::tree_traits<transform_jit_test::Counted> {
  using Counted = transform_jit_test::Counted;
  static std::tuple<Array> flatten(const Counted& c) {
    if (c.value.has_value()) ++transform_jit_test::g_live_flattens;
    return {c.value};
  }
  static Counted unflatten(std::tuple<Array> t) { return {std::get<0>(t)}; }
};

namespace transform_jit_test {

namespace {

float scale_by(float x) { return 2 * x; }
float shift_by(float x) { return x + 1; }

}  // namespace

TEST_CASE("jit of a callable module equals the module, and its weights are inputs", "[jit]") {
  const Mlp model = make_mlp(Activation::relu);
  const Array x = eqx::array({0.5f, -1.0f, 2.0f});
  auto jitted = eqx::filter_jit(model);
  check(jitted(x), {2}, model(x).to_vector<float>());
  // 4 weight/bias leaves + x: weights are not baked in as constants; the
  // only constant is relu's literal 0.
  CHECK(jitted.plan(x).graph().inputs.size() == 5);
  REQUIRE(jitted.plan(x).graph().consts.size() == 1);
  CHECK(jitted.plan(x).graph().consts[0].ndim() == 0);
  CHECK(jitted.num_traces() == 1);
}

TEST_CASE("jit takes and returns nested pytrees", "[jit]") {
  auto step = eqx::filter_jit([](const Mlp& model, const OptState& state, const Array& x) {
    Mlp next = model;
    for (auto& layer : next.layers) layer.weight = layer.weight * 0.5f;
    OptState s{state.moments, state.step + 1};
    s.moments["m"] = state.moments.at("m") + eqx::sum(x);
    return std::tuple{next, s, model(x)};
  });
  const Mlp model = make_mlp(Activation::tanh);
  const OptState state{{{"m", eqx::zeros({2})}}, 3};
  const Array x = eqx::array({1.0f, 2.0f, 3.0f});
  for (int call = 0; call < 2; ++call) {
    auto [m2, s2, y] = step(model, state, x);
    REQUIRE(m2.layers.size() == 2);
    check(m2.layers[1].weight, {2, 5}, (model.layers[1].weight * 0.5f).to_vector<float>());
    check(m2.layers[0].bias, {5}, model.layers[0].bias.to_vector<float>());
    CHECK(m2.activation == Activation::tanh);
    CHECK(s2.step == 4);  // a static output, from the trace
    check(s2.moments.at("m"), {2}, std::vector<float>{6, 6});
    check(y, {2}, model(x).to_vector<float>());
  }
  CHECK(step.num_traces() == 1);
}

TEST_CASE("generic lambdas and closures over concrete Arrays", "[jit]") {
  const Array w = eqx::array({1.0f, 2.0f, 3.0f});
  auto f = eqx::filter_jit([&w](const auto& x) { return x * w; });
  check(f(eqx::ones({3})), {3}, std::vector<float>{1, 2, 3});
  check(f(eqx::ones({2, 3})), {2, 3}, std::vector<float>{1, 2, 3, 1, 2, 3});
  CHECK(f.num_traces() == 2);
  CHECK(f.plan(eqx::ones({3})).graph().consts.size() == 1);  // w is a constant of the graph
}

TEST_CASE("static arguments are part of the cache key", "[jit]") {
  auto f = eqx::filter_jit([](const Array& x, int n, double s, Activation a, float (*g)(float)) {
    Array y = x * static_cast<float>(n) + g(static_cast<float>(s));
    return a == Activation::relu ? eqx::maximum(y, 0.0f) : eqx::tanh(y);
  });
  const Array x = eqx::array({-1.0f, 1.0f});
  check(f(x, 2, 0.5, Activation::relu, scale_by), {2}, std::vector<float>{0, 3});
  check(f(x, 2, 0.5, Activation::relu, scale_by), {2}, std::vector<float>{0, 3});
  CHECK(f.num_traces() == 1);  // equal values: no retrace
  check(f(x, 3, 0.5, Activation::relu, scale_by), {2}, std::vector<float>{0, 4});
  CHECK(f.num_traces() == 2);
  check(f(x, 3, 1.5, Activation::relu, scale_by), {2}, std::vector<float>{0, 6});
  CHECK(f.num_traces() == 3);
  check(f(x, 3, 1.5, Activation::tanh, scale_by), {2}, std::vector<float>{std::tanh(0.0f), std::tanh(6.0f)});
  CHECK(f.num_traces() == 4);
  check(f(x, 3, 1.5, Activation::tanh, shift_by), {2}, std::vector<float>{std::tanh(-0.5f), std::tanh(5.5f)});
  CHECK(f.num_traces() == 5);
  // Every earlier key is still cached.
  check(f(x, 2, 0.5, Activation::relu, scale_by), {2}, std::vector<float>{0, 3});
  CHECK(f.num_traces() == 5);
}

TEST_CASE("shapes, dtypes and empty leaves are part of the cache key", "[jit]") {
  auto f = eqx::filter_jit([](const std::tuple<Array, Array>& t) {
    const auto& [a, b] = t;
    return b.has_value() ? a + eqx::astype(b, a.dtype()) : a * 2.0f;
  });
  check(f(std::tuple{eqx::ones({2}), Array{}}), {2}, std::vector<float>{2, 2});
  check(f(std::tuple{eqx::ones({2}), eqx::ones({2})}), {2}, std::vector<float>{2, 2});
  check(f(std::tuple{eqx::ones({3}), eqx::ones({3})}), {3}, std::vector<float>{2, 2, 2});
  check(f(std::tuple{eqx::ones({3}, eqx::float64), eqx::ones({3})}), {3}, std::vector<double>{2, 2, 2});
  CHECK(f.num_traces() == 4);
  f(std::tuple{eqx::zeros({2}), Array{}});
  CHECK(f.num_traces() == 4);
}

TEST_CASE("assert_max_traces counts traces and names what changed", "[jit]") {
  auto counted = eqx::debug::assert_max_traces([](const Array& x, int n) { return x * static_cast<float>(n); }, 1, "scale");
  auto f = eqx::filter_jit(counted);
  f(eqx::ones({3}), 2);
  f(eqx::zeros({3}), 2);
  CHECK(eqx::debug::get_num_traces(counted) == 1);
  CHECK(eqx::debug::get_num_traces(f) == 1);
  CHECK(message_of<eqx::TraceError>([&] { f(eqx::ones({4}), 2); }) ==
        "eqx::debug::assert_max_traces: 'scale' was traced 2 times, more than the 1 allowed. Changed since the "
        "previous trace: [0]: f32[3] -> f32[4]. Each new shape, dtype or static value compiles the function again; "
        "pass values that change as Arrays, or keep shapes fixed");
  auto g = eqx::filter_jit(eqx::debug::assert_max_traces(
      [](const Linear& l, int n) { return l.weight * static_cast<float>(n); }, 1, "g"));
  g(Linear{eqx::ones({2}), eqx::ones({2})}, 1);
  std::string m = message_of<eqx::TraceError>([&] { g(Linear{eqx::ones({2}, eqx::float64), eqx::ones({2})}, 5); });
  CHECK(m.find("Changed since the previous trace: [0].weight: f32[2] -> f64[2]; [1]: 1 -> 5.") != std::string::npos);
  // Eager calls are not traces.
  auto eager = eqx::debug::assert_max_traces([](const Array& x) { return x; }, 0);
  eager(eqx::ones({1}));
  CHECK(eqx::debug::get_num_traces(eager) == 0);
}

TEST_CASE("debug::store_dce / inspect_dce: which stored values compilation removed", "[jit]") {
  auto f = eqx::filter_jit([](const Array& x) {
    auto [a, b] = eqx::debug::store_dce(std::pair{x * 2.0f, eqx::astype(x, eqx::int32)}, "jit_test.pair");
    (void)b;
    return a;
  });
  CHECK(eqx::debug::inspect_dce("jit_test.pair") == "Found 0 calls to eqx::debug::store_dce.\n");
  f.plan(eqx::zeros({3}));  // compiled, not run yet
  CHECK(eqx::debug::inspect_dce("jit_test.pair") ==
        "Found 1 call to eqx::debug::store_dce.\nEntry 0:\n(<DCE'd>, <DCE'd>)\n");
  check(f(eqx::array({1.0f, 2.0f, 3.0f})), {3}, std::vector<float>{2, 4, 6});
  CHECK(eqx::debug::inspect_dce("jit_test.pair") ==
        "Found 1 call to eqx::debug::store_dce.\nEntry 0:\n(f32[3], <DCE'd>)\n");
  // A second trace (a new shape) is a second entry; static leaves and None print as they are.
  struct Stored {
    Array used, unused, none;
    int k;
  };
  auto g = eqx::filter_jit([](const Array& x) {
    Stored s = eqx::debug::store_dce(Stored{x + 1.0f, x - 1.0f, Array{}, 7}, "jit_test.struct");
    return s.used;
  });
  g(eqx::zeros({2}));
  g(eqx::zeros({2, 2}));
  const std::string entries = eqx::debug::inspect_dce("jit_test.struct");
  CHECK(entries.substr(0, 39) == "Found 2 calls to eqx::debug::store_dce.");
  CHECK(entries.find("used=f32[2], unused=<DCE'd>, none=None, k=7)\nEntry 1:\n") != std::string::npos);
  CHECK(entries.find("used=f32[2,2], unused=<DCE'd>, none=None, k=7)\n") != std::string::npos);
  CHECK(eqx::debug::inspect_dce("jit_test.never_stored") == "Found 0 calls to eqx::debug::store_dce.\n");

  CHECK(message_of<eqx::TraceError>([] { eqx::debug::store_dce(eqx::zeros({2}), "eager"); }) ==
        "eqx::debug::store_dce('eager'): called outside any trace; use it inside the function given to "
        "eqx::filter_jit (only compiled code has dead code removed)");
  CHECK(message_of<eqx::TraceError>([] {
          eqx::filter_jit([](const Array& x) {
            eqx::debug::inspect_dce("inside");
            return x;
          })(eqx::zeros({2}));
        }) == "eqx::debug::inspect_dce('inside'): called inside a trace; call it outside, after running the "
              "compiled function");
}

TEST_CASE("custom pytree nodes as arguments and results", "[jit]") {
  auto f = eqx::filter_jit([](const Scaled& s) { return Scaled(s.value() * s.scale(), s.scale() + 1); });
  for (int call = 0; call < 3; ++call) {
    Scaled out = f(Scaled(eqx::array({1.0f, 2.0f}), 3.0f));  // a fresh temporary each call
    check(out.value(), {2}, std::vector<float>{3, 6});
    CHECK(out.scale() == 4.0f);
  }
  CHECK(f.num_traces() == 1);
  f(Scaled(eqx::array({1.0f, 2.0f}), 2.0f));  // the float is a static leaf
  CHECK(f.num_traces() == 2);
}

TEST_CASE("a cached call like the last one walks its arguments once", "[jit]") {
  auto f = eqx::filter_jit([](const Counted& c, int k) { return c.value * static_cast<float>(k); });
  const Counted c{eqx::array({1.0f, 2.0f})};
  f(c, 2);  // traced
  f(c, 2);  // found by its hash: now the last used
  g_live_flattens = 0;
  check(f(c, 2), {2}, std::vector<float>{2, 4});
  CHECK(g_live_flattens == 1);
  // Alternating between two specialisations: each call misses the last
  // entry, is found by its hash, and runs its own plan.
  check(f(c, 3), {2}, std::vector<float>{3, 6});
  check(f(c, 2), {2}, std::vector<float>{2, 4});
  check(f(Counted{eqx::array({1.0f, 2.0f, 4.0f})}, 2), {3}, std::vector<float>{2, 4, 8});
  check(f(c, 3), {2}, std::vector<float>{3, 6});
  CHECK(f.num_traces() == 3);
}

TEST_CASE("a leaked tracer passed to a jitted function is a TraceError", "[jit]") {
  Array leaked;
  eqx::filter_make_jaxpr([&](const Array& x) { return leaked = x + 1.0f; })(eqx::zeros({2}));
  auto f = eqx::filter_jit([](const Array& x) { return x * 2.0f; });
  CHECK(message_of<eqx::TraceError>([&] { f(leaked); }) ==
        "eqx::filter_jit: argument leaf [0] is an abstract Array from a trace that has already finished (a leaked "
        "tracer); pass concrete Arrays, or return the value from the transformed function instead");
}

TEST_CASE("a Python-style if on a traced Array is a ConcretizationError", "[jit]") {
  auto f = eqx::filter_jit([](const Array& x) { return eqx::sum(x) > 0.0f ? x : -x; });
  std::string m = message_of<eqx::ConcretizationError>([&] { f(eqx::ones({2})); });
  CHECK(m.rfind("eqx: converting to bool on an abstract (traced) Array bool[]", 0) == 0);
  CHECK(m.find("eqx::where") != std::string::npos);
  // The failed trace left no trace active behind it.
  check(eqx::ones({2}) + 1.0f, {2}, std::vector<float>{2, 2});
}

TEST_CASE("a jitted function called inside a trace is inlined", "[jit]") {
  auto inner = eqx::filter_jit([](const Array& x) { return eqx::exp(x); });
  auto j = eqx::filter_make_jaxpr([&](const Array& x) { return inner(x) + 1.0f; })(eqx::zeros({2}));
  CHECK(j.str() ==
        "{ lambda ; a:f32[2]. let\n"
        "    b:f32[2] = exp a\n"
        "    c:f32[2] = add b 1.0:f32[]\n"
        "  in (c) }");
  CHECK(inner.num_traces() == 0);
}

TEST_CASE("an identity returns the input's buffer; constant outputs return the constant", "[jit]") {
  const Array x = eqx::ones({4});
  auto id = eqx::filter_jit([](const Array& a) { return a; });
  CHECK(id(x).same_storage(x));
  // A captured concrete Array returned as it is comes back as that Array (the
  // plan's constant, not a copy), on the tracing call and on a cache hit.
  const Array c = eqx::array({7.f, 8.f});
  auto constant = eqx::filter_jit([&c](const Array&) { return c; });
  CHECK(constant(x).same_storage(c));
  CHECK(constant(x).same_storage(c));
  CHECK(constant.num_traces() == 1);
  check(constant(x), {2}, std::vector<float>{7, 8});
}

TEST_CASE("a cache hit allocates only its outputs", "[jit]") {
  // An output Array is a handle (its Storage and shared control block) and
  // a buffer: with the buffer pool on, both come from the small blocks the
  // warm-up calls freed; without it (under AddressSanitizer) each is an
  // allocation. The flat list that carries outputs to the pytree is one more.
  const Mlp model = make_mlp(Activation::relu);
  const Array x = eqx::array({0.5f, -1.0f, 2.0f});
  auto f = eqx::filter_jit([](const Mlp& m, const Array& x) { return std::tuple{m(x), eqx::sum(x) * 2.0f}; });
  f(model, x);  // trace and compile
  f(model, x);  // warm the per-thread buffers
  std::tuple<Array, Array> out;
  const bool pooled = eqx::detail::BufferPool::instance().limit() > 0;  // off under AddressSanitizer
  CHECK(allocations_in([&] { out = f(model, x); }) == (pooled ? 1 : 2 * 2 + 1));
  check(std::get<0>(out), {2}, model(x).to_vector<float>());

  auto id = eqx::filter_jit([](const Array& a) { return a; });
  id(x);
  id(x);
  Array same;
  CHECK(allocations_in([&] { same = id(x); }) == 1);  // the output list only: no new buffer

  // The counter itself works: an eager op on 8 KiB (above the small blocks,
  // below the pool's large ones) allocates its buffer.
  CHECK(allocations_in([&] { same = eqx::zeros({2048}) + 1.0f; }) > 0);
}

TEST_CASE("a kernel split across threads allocates no more than on one thread", "[jit][threads]") {
  // parallel_for hands the pool one std::function whose callable (a
  // pointer) fits in its inline buffer, so splitting a kernel, jitted or
  // eager, allocates nothing more.
  const int threads = eqx::num_threads();
  const Array x = eqx::astype(eqx::arange(1 << 16), eqx::float32);  // two threads' worth of work
  auto f = eqx::filter_jit([](const Array& a) { return a * 2.0f + 1.0f; });
  auto count = [&](int n) {
    eqx::set_num_threads(n);
    Array out;
    for (int warm = 0; warm < 2; ++warm) {  // start the workers, warm the buffers
      out = f(x);
      out = x * 3.0f;
    }
    const std::size_t jitted = allocations_in([&] { out = f(x); });
    const std::size_t eager = allocations_in([&] { out = x * 3.0f; });
    CHECK(out.to_vector<float>()[65535] == 196605.0f);
    return std::pair{jitted, eager};
  };
  const auto one = count(1), two = count(2);
  eqx::set_num_threads(threads);
  CHECK(two.first == one.first);
  CHECK(two.second == one.second);
}

TEST_CASE("a cache hit of jitted control flow allocates only its outputs", "[jit][control_flow]") {
  // The loop bodies are compiled with the enclosing plan, and the carries
  // and pointer lists live in its per-call scratch: a call allocates its
  // outputs and the list that carries them, as a plain jitted function does.
  const Array x = eqx::array({0.5f, -1.0f, 2.0f});
  const Array xs = eqx::reshape(eqx::astype(eqx::arange(12), eqx::float32) / 12.0f, {4, 3});
  const bool pooled = eqx::detail::BufferPool::instance().limit() > 0;  // off under AddressSanitizer
  const std::size_t per_output = pooled ? 0 : 2;

  auto scanned = eqx::filter_jit([](const Array& h0, const Array& steps) {
    return eqx::scan([](const Array& h, const Array& s) { return std::pair{eqx::tanh(h + s), h * 2.0f}; }, h0, steps);
  });
  auto branch = eqx::filter_jit([](const Array& v) {
    return eqx::cond(eqx::sum(v) > 0.0f, [](const Array& a) { return a * 2.0f; }, [](const Array& a) { return -a; }, v);
  });
  auto loop = eqx::filter_jit([](const Array& v) {
    return eqx::while_loop([](const Array& a) { return eqx::sum(a) < 100.0f; }, [](const Array& a) { return a + 1.0f; }, v);
  });
  std::pair<Array, Array> carry_and_ys;
  Array y, w;
  for (int warm = 0; warm < 2; ++warm) {  // trace and compile, then warm the per-thread buffers
    carry_and_ys = scanned(x, xs);
    y = branch(x);
    w = loop(x);
  }
  CHECK(allocations_in([&] { carry_and_ys = scanned(x, xs); }) == 2 * per_output + 1);
  CHECK(allocations_in([&] { y = branch(x); }) == per_output + 1);
  CHECK(allocations_in([&] { w = loop(x); }) == per_output + 1);

  // And they compute what they did eagerly.
  Array h = x;
  for (int t = 0; t < 4; ++t) h = eqx::tanh(h + eqx::reshape(eqx::slice(xs, 0, t, t + 1), {3}));
  check(carry_and_ys.first, {3}, h.to_vector<float>());
  check(y, {3}, std::vector<float>{1.0f, -2.0f, 4.0f});
  check(w, {3}, std::vector<float>{33.5f, 32.0f, 35.0f});
}

TEST_CASE("one jitted function called from several threads at once", "[jit][threads]") {
  auto f = eqx::filter_jit([](const Array& x, const Array& y) { return eqx::tanh(eqx::matmul(x, y) * 0.5f) + 1.0f; });
  const Array x = eqx::random::normal(eqx::random::key(1), {16, 16});
  const Array y = eqx::random::normal(eqx::random::key(2), {16, 16});
  const std::vector<float> want = (eqx::tanh(eqx::matmul(x, y) * 0.5f) + 1.0f).to_vector<float>();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (f(x, y).to_vector<float>() != want) ++wrong;
    });
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(f.num_traces() >= 1);
  CHECK(f.num_traces() <= 4);  // threads that miss together may each trace once
}

// ------------------------------------------------ eqx::clear_caches

TEST_CASE("clear_caches empties every cache; the next call traces again", "[jit][caches]") {
  int traced = 0;  // a side effect of tracing: the body runs only when traced
  auto f = eqx::filter_jit([&traced](const Array& x) {
    ++traced;
    return eqx::tanh(x) * 2.0f;
  });
  auto looped = eqx::filter_jit([](const Array& h0, const Array& w) {  // a compiled scan body, and a GEMM shape
    return eqx::scan([&w](const Array& h, const Array& s) { return std::pair{eqx::matmul(w, h) + s, h}; }, h0,
                     eqx::ones({3, h0.shape()[0]}));
  });
  const Array x = eqx::array({0.5f, -1.0f, 2.0f});
  const Array h0 = eqx::ones({32});
  const Array w = eqx::full({32, 32}, 1.0f / 32);
  check(f(x), {3}, std::vector<float>{0.92423431f, -1.52318831f, 1.92805516f});  // 2 tanh(x), NumPy
  check(looped(h0, w).first, {32}, std::vector<float>(32, 4.0f));  // h -> mean(h) + 1, three times
  { const Array big = eqx::ones({512, 512}); }  // 1 MiB freed into the buffer pool
  looped(eqx::ones({16}), eqx::zeros({16, 16}));  // a second entry
  CHECK(f.cache_size() == 1);
  CHECK(looped.cache_size() == 2);
  eqx::CacheStats before = eqx::cache_stats();
  CHECK(before.jit_functions >= 2);
  CHECK(before.jit_entries >= 3);
  CHECK(before.jit_bytes > 0);
  CHECK(before.compiled_bodies >= 1);
  const bool pooled = eqx::detail::BufferPool::instance().limit() > 0;  // off under AddressSanitizer
  CHECK(before.pool_bytes >= (pooled ? std::size_t{1} << 20 : 0));
  const bool timed = eqx::detail::kHaveBlas && eqx::detail::gemm_policy_slot() == eqx::detail::GemmPolicy::automatic;
  CHECK(before.gemm_choices >= (timed ? 1u : 0u));

  eqx::clear_caches();
  const eqx::CacheStats after = eqx::cache_stats();
  CHECK(after.jit_functions == before.jit_functions);  // the functions live on, empty
  CHECK(after.jit_entries == 0);
  CHECK(after.jit_bytes == 0);
  CHECK(after.compiled_bodies == 0);
  CHECK(after.pool_bytes == 0);
  CHECK(after.gemm_choices == 0);
  CHECK(f.cache_size() == 0);
  CHECK(looped.cache_size() == 0);

  // Both functions still work, and trace again.
  check(f(x), {3}, std::vector<float>{0.92423431f, -1.52318831f, 1.92805516f});
  CHECK(traced == 2);
  CHECK(f.num_traces() == 2);
  CHECK(f.cache_size() == 1);
  auto copy = looped;  // copies share the cache
  check(copy(h0, w).first, {32}, std::vector<float>(32, 4.0f));
  CHECK(looped.num_traces() == 3);
  CHECK(looped.cache_size() == 1);
  CHECK(eqx::cache_stats().compiled_bodies >= 1);
}

TEST_CASE("clear_caches while other threads run jitted calls", "[jit][caches][threads]") {
  auto f = eqx::filter_jit([](const Array& x, const Array& y) { return eqx::tanh(eqx::matmul(x, y) * 0.5f) + 1.0f; });
  const Array x = eqx::random::normal(eqx::random::key(1), {16, 16});
  const Array y = eqx::random::normal(eqx::random::key(2), {16, 16});
  const std::vector<float> want = (eqx::tanh(eqx::matmul(x, y) * 0.5f) + 1.0f).to_vector<float>();
  // Each clear forgets the GEMM backend choice, and a new timing may pick
  // the other backend, whose sums round differently: compare to 1e-5. A
  // freed entry would give garbage, not rounding.
  auto close = [&](const std::vector<float>& got) {
    if (got.size() != want.size()) return false;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (!(std::abs(got[i] - want[i]) <= 1e-5f * (1.0f + std::abs(want[i])))) return false;
    return true;
  };
  std::atomic<int> wrong{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      while (!stop)
        if (!close(f(x, y).to_vector<float>())) ++wrong;
    });
  for (int i = 0; i < 50; ++i) {
    eqx::clear_caches();
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(wrong == 0);
  CHECK(f.num_traces() >= 1);
  CHECK(close(f(x, y).to_vector<float>()));
}

TEST_CASE("clear_caches from inside a jitted call is an error", "[jit][caches]") {
  auto f = eqx::filter_jit([](const Array& x) {
    eqx::clear_caches();
    return x * 2.0f;
  });
  CHECK(message_of<eqx::ValueError>([&] { f(eqx::ones({2})); }) ==
        "eqx::clear_caches: called from inside a jitted call (while the function was traced or ran, e.g. from a "
        "debug::print sink); it would wait for that call to finish. Call it between calls");
  CHECK(f.cache_size() == 0);
}

// ------------------------------------------------ filter_jit donation

namespace {

/// 64 -> 256 -> 10 (tanh): the hidden weight is 64 KiB, a buffer-pool block.
struct Net {
  Linear hidden;
  Linear out;
  Array operator()(const Array& x) const { return out(eqx::tanh(hidden(x))); }
};

Net make_net() {
  auto k = eqx::random::split_keys(eqx::random::key(5), 4);
  return Net{Linear{eqx::random::normal(k[0], {256, 64}) * 0.1f, eqx::random::normal(k[1], {256}) * 0.1f},
             Linear{eqx::random::normal(k[2], {10, 256}) * 0.1f, eqx::random::normal(k[3], {10}) * 0.1f}};
}

struct Batch {
  Array x;
  Array y;
};

using AdamState = decltype(eqx::optim::adam(0.01).init(std::declval<const Net&>()));

/// One Adam step on a squared error; the batch comes first, so that
/// Donate::all_except_first donates the model and the optimiser state.
struct AdamStep {
  std::tuple<Net, AdamState, Array> operator()(const Batch& b, const Net& net, const AdamState& state) const {
    auto loss = [](const Net& n, const Array& x, const Array& y) {
      const Array d = n(x) - y;
      return eqx::sum(d * d);
    };
    auto [value, grads] = eqx::filter_value_and_grad(loss)(net, b.x, b.y);
    auto [updates, next] = eqx::optim::adam(0.01).update(grads, state, net);
    return {eqx::apply_updates(net, updates), next, value};
  }
};

Batch make_batch(int i) {
  return {eqx::random::uniform(eqx::random::key(100 + i), {64}), eqx::random::uniform(eqx::random::key(200 + i), {10})};
}

std::vector<std::vector<float>> leaf_values(const auto& tree) {
  std::vector<std::vector<float>> out;
  for (const Array& a : eqx::tree_leaves(tree)) out.push_back(a.to_vector<float>());
  return out;
}

}  // namespace

TEST_CASE("a donated Adam step equals the undonated one bit for bit", "[jit][donate]") {
  auto plain = eqx::filter_jit(AdamStep{});
  auto donating = eqx::filter_jit(AdamStep{}, {.donate = eqx::Donate::all_except_first});
  CHECK(donating.options().donate == eqx::Donate::all_except_first);
  Net net_a = make_net(), net_b = make_net();  // equal values, separate buffers
  AdamState state_a = eqx::optim::adam(0.01).init(net_a), state_b = eqx::optim::adam(0.01).init(net_b);
  // Step 0's loss, eagerly: the step computes real values.
  const Batch b0 = make_batch(0);
  const Array d0 = net_a(b0.x) - b0.y;
  const float loss0 = eqx::sum(d0 * d0).item<float>();
  std::size_t reused = 0;
  for (int i = 0; i < 4; ++i) {
    const Batch batch = make_batch(i);
    auto [na, sa, la] = plain(batch, net_a, state_a);
    const Array old_weight = net_b.hidden.weight;  // a second handle: this buffer is shared, so not consumed
    auto [nb, sb, lb] = donating(batch, net_b, state_b);
    CHECK_FALSE(old_weight.is_donated());
    CHECK(leaf_values(old_weight) == leaf_values(net_a.hidden.weight));  // still readable, unchanged
    CHECK(net_b.out.weight.is_donated());
    CHECK(std::get<0>(state_b).mu.hidden.weight.is_donated());
    CHECK(batch.x.to_vector<float>().size() == 64);  // the first argument is not donated
    if (i == 0) CHECK(la.item<float>() == Approx(loss0).epsilon(1e-5));
    CHECK(la.item<float>() == lb.item<float>());
    CHECK(leaf_values(na) == leaf_values(nb));
    CHECK(leaf_values(sa) == leaf_values(sb));
    for (const Array& out : eqx::tree_leaves(std::tuple{nb, sb}))
      for (const Array& in : eqx::tree_leaves(std::tuple{net_b, state_b})) reused += out.same_storage(in) ? 1 : 0;
    net_a = na, state_a = sa;
    net_b = nb, state_b = sb;
  }
  // Every parameter and moment but the shared hidden weight took a donated
  // buffer on every step (4 of 4 parameters, 8 moments, the count: 13 - 1).
  CHECK(reused == 4 * 12);
  CHECK(plain.num_traces() == 1);
  CHECK(donating.num_traces() == 1);
}

TEST_CASE("reading a donated Array is an error naming where it went", "[jit][donate]") {
  auto step = eqx::filter_jit(AdamStep{}, {.donate = eqx::Donate::all_except_first});
  const Net net = make_net();
  const AdamState state = eqx::optim::adam(0.01).init(net);
  const Batch batch = make_batch(0);
  auto [next, next_state, loss] = step(batch, net, state);
  const std::string tail =
      "; the call may have written its outputs there. Use the values the call returned instead of the donated Array, "
      "or do not donate this argument (eqx::Donate::none, or eqx::Donate::all_except_first with it as the first "
      "argument)";
  const std::string site = std::string(" with donate = all_except_first");
  const std::string fn = "eqx::filter_jit(" + std::string(eqx::detail::type_name<AdamStep>()) + ")";
  CHECK(message_of<eqx::ValueError>([&] { net.out.bias.to_vector<float>(); }) ==
        "eqx: to_vector() on an Array f32[10] whose buffer was donated to argument 1 (leaf [1].out.bias) of " + fn +
            site + tail);
  CHECK(message_of<eqx::ValueError>([&] { std::get<0>(state).count.item<int>(); }) ==
        "eqx: item() on an Array i32[] whose buffer was donated to argument 2 (leaf [2][0].count) of " + fn + site +
            tail);
  // An eager op and a jitted call read their inputs through raw_data().
  const std::string weight = "eqx: raw_data() on an Array f32[256,64] whose buffer was donated to argument 1 (leaf "
                             "[1].hidden.weight) of " + fn + site + tail;
  CHECK(message_of<eqx::ValueError>([&] { (void)(net.hidden.weight + 1.0f); }) == weight);
  CHECK(message_of<eqx::ValueError>([&] { step(batch, net, state); }) == weight);
  CHECK_THROWS_AS(net.hidden.weight.data<float>(), eqx::ValueError);
  // Metadata stays readable; the outputs are fine.
  CHECK(net.hidden.weight.shape() == eqx::Shape{256, 64});
  CHECK(next.hidden.weight.to_vector<float>().size() == 256 * 64);
  CHECK_FALSE(next.hidden.weight.is_donated());
  CHECK(std::get<0>(next_state).count.item<int>() == 1);
}

TEST_CASE("donation: shared buffers are not reused, unmatched ones are consumed", "[jit][donate]") {
  // A leaf whose buffer another Array shares is neither written nor marked.
  auto twice = eqx::filter_jit([](const Array& a) { return a * 2.0f; }, {.donate = eqx::Donate::all});
  Array a = eqx::array({1.f, 2.f, 3.f});
  const Array keep = a;
  const Array doubled = twice(a);
  check(doubled, {3}, std::vector<float>{2, 4, 6});
  check(keep, {3}, std::vector<float>{1, 2, 3});
  CHECK_FALSE(a.is_donated());
  CHECK_FALSE(doubled.same_storage(a));
  // Sole owner: the output takes the buffer.
  Array b = eqx::array({1.f, 2.f, 3.f});
  const Array b2 = twice(b);
  check(b2, {3}, std::vector<float>{2, 4, 6});
  CHECK(b2.same_storage(b));
  CHECK(b.is_donated());
  // No output of its type: not reused, but consumed all the same (whether a
  // buffer is reused depends on the plan, whether a donated Array may be
  // read afterwards must not).
  auto total = eqx::filter_jit([](const Array& v) { return eqx::sum(v); }, {.donate = eqx::Donate::all});
  Array c = eqx::array({1.f, 2.f, 4.f});
  const Array s = total(c);
  CHECK(s.item<float>() == 7.0f);
  CHECK_FALSE(s.same_storage(c));
  CHECK(c.is_donated());
  // An input returned as it is stays valid through the output.
  auto pass = eqx::filter_jit([](const Array& v, const Array& w) { return std::pair{v, v + w}; },
                              {.donate = eqx::Donate::all});
  Array v = eqx::array({1.f, 2.f}), w2 = eqx::array({10.f, 20.f});
  auto [same, sum] = pass(v, w2);
  CHECK(v.is_donated());
  CHECK(same.same_storage(v));
  check(same, {2}, std::vector<float>{1, 2});
  check(sum, {2}, std::vector<float>{11, 22});  // written into w2's buffer, not v's (v is an output)
  CHECK(sum.same_storage(w2));
  // Donate::none (the default) consumes nothing.
  auto plain = eqx::filter_jit([](const Array& d) { return d * 2.0f; });
  Array d = eqx::array({1.f});
  plain(d);
  CHECK_FALSE(d.is_donated());
}

TEST_CASE("a donated training step allocates nothing per call", "[jit][donate]") {
  // Without donation each of the 14 outputs is a new handle and buffer:
  // with the buffer pool on, the handles and the small buffers come from
  // blocks the warm-up calls freed, and only the three f32[10,256] buffers
  // (10 KiB: above the small blocks, below the pool's 64 KiB) are
  // allocated; without it (under AddressSanitizer) all 28 are. With
  // donation the 13 parameters, moments and count are written into the
  // donated buffers: only the loss is new. The list carrying the outputs
  // is one allocation either way.
  auto plain = eqx::filter_jit(AdamStep{});
  auto donating = eqx::filter_jit(AdamStep{}, {.donate = eqx::Donate::all_except_first});
  const Batch batch = make_batch(0);
  Net net_a = make_net(), net_b = make_net();
  AdamState state_a = eqx::optim::adam(0.01).init(net_a), state_b = eqx::optim::adam(0.01).init(net_b);
  for (int warm = 0; warm < 3; ++warm) {
    std::tie(net_a, state_a, std::ignore) = plain(batch, net_a, state_a);
    std::tie(net_b, state_b, std::ignore) = donating(batch, net_b, state_b);
  }
  const bool pooled = eqx::detail::BufferPool::instance().limit() > 0;  // off under AddressSanitizer
  std::tuple<Net, AdamState, Array> out_a, out_b;
  const std::size_t plain_allocations = allocations_in([&] { out_a = plain(batch, net_a, state_a); });
  const auto plain_values = leaf_values(std::get<0>(out_a));
  out_a = {};  // the plain step's Arrays go back to the small blocks the donated call takes from
  net_a = Net{};
  state_a = AdamState{};
  const std::size_t donated_allocations = allocations_in([&] { out_b = donating(batch, net_b, state_b); });
  CHECK(plain_allocations == (pooled ? 3 + 1 : 14 * 2 + 1));
  CHECK(donated_allocations == (pooled ? 1 : 1 * 2 + 1));
  CHECK(plain_values == leaf_values(std::get<0>(out_b)));
}

}  // namespace transform_jit_test
