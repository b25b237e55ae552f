// Data-parallel scaling of W2 (WORKLOADS.md: MLP 784-512-512-10, Adam 1e-3,
// global batch 128) over MPI, measured on this machine, and a model of the
// step time on N machines.
//
//   mpirun -np 1 build/default/benchmarks/dist_w2_scaling
//   mpirun -np 2 build/default/benchmarks/dist_w2_scaling
//
// Each rank runs the jitted gradient on its 128/N examples, tree_allreduce
// averages the gradients, and a jitted Adam update follows. Printed (rank
// 0): the median step, its compute part, the median all-reduce, and the
// bytes each rank all-reduces per step. With --model it also times the
// one-process compute at the shard sizes of N = 1..64 ranks and prints the
// step time a ring all-reduce would give over 10 and 100 Gb/s links:
//   t(N) = compute(128 / N) + update + 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/dist.hpp>
#include <eqx/eqx.hpp>

namespace nn = eqx::nn;
namespace optim = eqx::optim;
namespace dist = eqx::dist;
using eqx::Array;
using Clock = std::chrono::steady_clock;

namespace {

Array cross_entropy(const nn::MLP& model, const Array& x, const Array& y) {
  const Array logits = eqx::filter_vmap(model)(x);
  return -eqx::mean(eqx::sum(nn::log_softmax(logits, 1) * eqx::one_hot(y, 10), 1));
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double step = 0, compute = 0, update = 0, allreduce = 0;
  std::size_t bytes = 0;
};

/// Median times of `steps` data-parallel W2 steps with a shard of `local_batch` per rank.
Timing measure(int local_batch, int steps, bool communicate) {
  nn::MLP model = nn::MLP::init(784, 10, 512, 2, eqx::random::key(20));
  const auto opt = optim::adam(1e-3);
  auto state = opt.init(eqx::filter(model, eqx::is_array));
  auto grad = eqx::filter_jit(eqx::filter_value_and_grad(cross_entropy));
  auto apply = eqx::filter_jit([opt](const nn::MLP& m, const decltype(state)& s, const nn::MLP& g) {
    auto [updates, next] = opt.update(g, s, m);
    return std::pair{eqx::apply_updates(m, updates), next};
  });
  const Array teacher = eqx::random::normal(eqx::random::key(7), {784, 10});
  const Array x = eqx::random::uniform(eqx::random::key(8 + std::uint32_t(dist::rank())), {local_batch, 784});
  const Array y = eqx::argmax(eqx::matmul(x - 0.5f, teacher), 1);
  std::vector<double> step, compute, update, reduce;
  std::size_t bytes = 0;
  for (int i = 0; i < steps + 10; ++i) {
    if (communicate) dist::barrier();  // every rank starts the step together
    const auto t0 = Clock::now();
    auto [loss, g] = grad(model, x, y);
    const double c = seconds_since(t0);
    const auto t1 = Clock::now();
    dist::CommStats before = dist::comm_stats();
    if (communicate) g = dist::tree_allreduce(g, dist::Reduce::mean);
    const double r = seconds_since(t1);
    bytes = dist::comm_stats().bytes - before.bytes;
    const auto t2 = Clock::now();
    std::tie(model, state) = apply(model, state, g);
    const double u = seconds_since(t2);
    if (i >= 10) {  // after warm-up (compilation, first touches)
      step.push_back(seconds_since(t0));
      compute.push_back(c);
      reduce.push_back(r);
      update.push_back(u);
    }
  }
  return {median(step), median(compute), median(update), median(reduce), bytes};
}

}  // namespace

int main(int argc, char** argv) {
  return dist::run(argc, argv, [&] {
    const bool model = argc > 1 && std::string(argv[1]) == "--model";
    const int ranks = dist::size();
    constexpr int kGlobal = 128;
    const Timing t = measure(kGlobal / ranks, 200, true);
    if (dist::rank() == 0)
      std::printf("W2 data-parallel, %d rank(s), %d example(s) each, %s thread(s) per rank: step %.3f ms "
                  "(gradient %.3f ms, all-reduce %.3f ms, Adam update %.3f ms), %.2f MB all-reduced per rank per step\n",
                  ranks, kGlobal / ranks, std::getenv("EQX_NUM_THREADS") ? std::getenv("EQX_NUM_THREADS") : "default",
                  1e3 * t.step, 1e3 * t.compute, 1e3 * t.allreduce, 1e3 * t.update, double(t.bytes) / 1e6);
    if (model && dist::rank() == 0 && ranks == 1) {
      const double bytes = double(t.bytes), latency = 5e-6;  // a 10/100 GbE round of a ring step
      std::printf("\nModel: t(N) = gradient(128/N) + update + 2(N-1)/N * %.2f MB / bandwidth + 2(N-1) * %.0f us\n",
                  bytes / 1e6, latency * 1e6);
      std::printf("%4s %10s %12s %14s %14s %12s %12s\n", "N", "shard", "gradient ms", "step 10Gb/s", "step 100Gb/s",
                  "speedup 10", "speedup 100");
      double single = 0;
      for (int n : {1, 2, 4, 8, 16, 32, 64}) {
        const Timing c = measure(kGlobal / n, 100, false);
        auto step_at = [&](double gbit) {
          const double comm = n == 1 ? 0 : 2.0 * (n - 1) / n * bytes / (gbit * 1e9 / 8) + 2.0 * (n - 1) * latency;
          return c.compute + c.update + comm;
        };
        if (n == 1) single = step_at(10);
        std::printf("%4d %10d %12.3f %14.3f %14.3f %11.2fx %11.2fx\n", n, kGlobal / n, 1e3 * c.compute,
                    1e3 * step_at(10), 1e3 * step_at(100), single / step_at(10), single / step_at(100));
      }
    }
    return 0;
  });
}
