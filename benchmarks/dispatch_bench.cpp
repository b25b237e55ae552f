// W5 "dispatch" (shared/WORKLOADS.md): a chain of 100 out-of-place
// elementwise ops on 16 floats (x + 0.1 on even steps, x * 0.99 on odd).
// Eagerly, every eqx op goes through bind: shape rule, output allocation,
// kernel. Under filter_jit the chain is traced once and fused into one tiled
// loop; a call hashes the key, runs the plan and allocates the result.
// The Eigen floor runs the same runtime op list into a preallocated buffer
// (and, in the /alloc variant, allocates a fresh result per op), so the
// ratios between them are eqx's per-op overhead, measured in one run.

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include <Eigen/Core>
#include <eqx/eqx.hpp>

namespace {

constexpr int kOps = 100;
constexpr int kSize = 16;

enum class Op { add, mul };

std::vector<Op> op_list() {
  std::vector<Op> ops;
  for (int j = 0; j < kOps; ++j) ops.push_back(j % 2 == 0 ? Op::add : Op::mul);
  return ops;
}

/// The float64 reference result of the chain (the W5 check).
std::vector<double> reference() {
  std::vector<double> x(kSize);
  for (int i = 0; i < kSize; ++i) x[i] = i / 16.0;
  for (Op op : op_list())
    for (double& v : x) v = op == Op::add ? v + 0.1 : v * 0.99;
  return x;
}

void check(const std::vector<float>& got, benchmark::State& state) {
  auto want = reference();
  for (int i = 0; i < kSize; ++i)
    if (std::abs(got[i] - want[i]) > 1e-4 * std::abs(want[i]) + 1e-6) {
      state.SkipWithError("W5 result does not match the float64 reference");
      return;
    }
}

/// Adds the time per elementwise op (one chain is kOps ops) to the report.
void report_ns_per_op(benchmark::State& state) {
  state.counters["ns_per_op"] = benchmark::Counter(static_cast<double>(state.iterations()) * kOps,
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_W5_EqxEager(benchmark::State& state) {
  const std::vector<Op> ops = op_list();
  const eqx::Array x0 = eqx::arange(kSize) / 16.0f;
  eqx::Array x;
  for (auto _ : state) {
    x = x0;
    for (Op op : ops) x = op == Op::add ? x + 0.1f : x * 0.99f;
    benchmark::DoNotOptimize(x);
  }
  check(x.to_vector<float>(), state);
  report_ns_per_op(state);
}
BENCHMARK(BM_W5_EqxEager);

void BM_W5_EqxJit(benchmark::State& state) {
  const std::vector<Op> ops = op_list();
  auto chain = eqx::filter_jit([&ops](eqx::Array x) {
    for (Op op : ops) x = op == Op::add ? x + 0.1f : x * 0.99f;
    return x;
  });
  const eqx::Array x0 = eqx::arange(kSize) / 16.0f;
  eqx::Array x = chain(x0);  // trace and compile before timing
  for (auto _ : state) {
    x = chain(x0);
    benchmark::DoNotOptimize(x);
  }
  check(x.to_vector<float>(), state);
  report_ns_per_op(state);
}
BENCHMARK(BM_W5_EqxJit);

void BM_W5_EigenFloor(benchmark::State& state) {
  const std::vector<Op> ops = op_list();
  Eigen::ArrayXf x0(kSize), a(kSize), b(kSize);
  for (int i = 0; i < kSize; ++i) x0[i] = i / 16.0f;
  for (auto _ : state) {
    a = x0;
    for (Op op : ops) {
      if (op == Op::add) b = a + 0.1f;
      else b = a * 0.99f;
      a.swap(b);
    }
    benchmark::DoNotOptimize(a.data());
  }
  check(std::vector<float>(a.data(), a.data() + kSize), state);
}
BENCHMARK(BM_W5_EigenFloor);

void BM_W5_EigenFloorAlloc(benchmark::State& state) {
  const std::vector<Op> ops = op_list();
  Eigen::ArrayXf x0(kSize);
  for (int i = 0; i < kSize; ++i) x0[i] = i / 16.0f;
  std::unique_ptr<Eigen::ArrayXf> x;
  for (auto _ : state) {
    x = std::make_unique<Eigen::ArrayXf>(x0);
    for (Op op : ops) x = std::make_unique<Eigen::ArrayXf>(op == Op::add ? Eigen::ArrayXf(*x + 0.1f) : Eigen::ArrayXf(*x * 0.99f));
    benchmark::DoNotOptimize(x->data());
  }
  check(std::vector<float>(x->data(), x->data() + kSize), state);
}
BENCHMARK(BM_W5_EigenFloorAlloc);

// The string-keyed parameter bag's share of an eager call with parameters
// (include/eqx/prim/primitive.hpp says why eqx keeps the bag): a reduction
// of 16 floats over one axis, and, alone, what its call does with Params
// (build them with one axis list, read it back in the shape rule and the
// kernel). Compare the two per-call times within one run.
void BM_EagerReduceSum(benchmark::State& state) {
  const eqx::Array x = eqx::reshape(eqx::arange(kSize) / 16.0f, {4, 4});
  for (auto _ : state) {
    eqx::Array y = eqx::sum(x, 1);
    benchmark::DoNotOptimize(y);
  }
}
BENCHMARK(BM_EagerReduceSum);

void BM_ParamsOfReduceSum(benchmark::State& state) {
  std::int64_t axis = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(axis);
    eqx::Params p = eqx::Params{}.set("axes", std::vector<std::int64_t>{axis});
    std::int64_t read = 0;
    for (int use = 0; use < 2; ++use) read += p.get<std::vector<std::int64_t>>("axes")[0];
    benchmark::DoNotOptimize(read);
  }
}
BENCHMARK(BM_ParamsOfReduceSum);

// Handing work to the thread pool (core/threads.hpp): a parallel_for of two
// empty chunks on 2 threads, with `serial` steps of scalar work before each
// call (0: back to back; 2000: about the gap between two parallel kernels
// of a small training step), against that serial work alone. Workers that
// sleep between tasks took 40-55 us per hand-off on a 2-vCPU cloud
// machine; the pool's workers spin for the next task first.
void serial_work(int steps) {
  double x = 0;
  for (int i = 0; i < steps; ++i) benchmark::DoNotOptimize(x += 1.0);
}

void BM_ParallelForHandOff(benchmark::State& state) {
  const int serial = static_cast<int>(state.range(0));
  const int threads_before = eqx::num_threads();
  eqx::set_num_threads(2);
  for (auto _ : state) {
    serial_work(serial);
    eqx::detail::parallel_for(2, eqx::detail::kParallelGrain, [&](std::int64_t b, std::int64_t e) {
      benchmark::DoNotOptimize(b + e);
    });
  }
  eqx::set_num_threads(threads_before);
}
BENCHMARK(BM_ParallelForHandOff)->Arg(0)->Arg(2000)->UseRealTime();

void BM_SerialWorkAlone(benchmark::State& state) {
  for (auto _ : state) serial_work(static_cast<int>(state.range(0)));
}
BENCHMARK(BM_SerialWorkAlone)->Arg(2000);

}  // namespace
