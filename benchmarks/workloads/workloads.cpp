// eqx on the six workloads of WORKLOADS.md (W1-W6), written as a user
// writes them: eqx::nn layers, eqx::optim optimisers, one filter_jit of
// filter_value_and_grad + opt.update + apply_updates. It follows the peers'
// timing protocol and prints the same JSON lines, so `benchmarks/compare`
// can put eqx's rows in one table beside PyTorch, libtorch and the Eigen
// floor measured in the same run.
//
//   eqx_workloads --threads 1 [--workloads W1,W3] [--check]
//   eqx_workloads --threads 1 --sweep        # MLP width and batch sweep (GFLOP/s)
//   EQX_WORKLOADS_PRINT_PLAN=W1 eqx_workloads --workloads W1   # the jitted step's graph
//
// Rows (peer names as the peers' report.py knows them): eqx-jit (the
// compiled step), eqx-eager (the same step function without filter_jit; W1,
// W2, W6), eqx-jit-fused (W5: the 100-op chain compiled, so fused), and
// eqx-eager on W5 (100 separate ops). Protocol (WORKLOADS.md): warm-up of at
// least 20 steps and 0.3 s, K from 5 more steps so a repeat takes 0.2 s, 7
// repeats, median and min per step; PEERS_REPEATS, PEERS_TARGET_S and
// PEERS_WARMUP_S override as for the peers. --check trains a fresh model
// (another seed) for 500 (W1) or 300 steps and prints the mean loss of the
// first and last 8 steps; it passes when last < 0.7 first.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>

namespace {

namespace nn = eqx::nn;
namespace optim = eqx::optim;
using eqx::Array;

// ------------------------------------------------------------------ protocol

struct Protocol {
  double warmup_s = 0.3, target_s = 0.2;
  int warmup_steps = 20, repeats = 7;
  static Protocol from_env() {
    Protocol p;
    if (const char* s = std::getenv("PEERS_REPEATS")) p.repeats = std::max(1, std::atoi(s));
    if (const char* s = std::getenv("PEERS_TARGET_S")) p.target_s = std::atof(s);
    if (const char* s = std::getenv("PEERS_WARMUP_S")) p.warmup_s = std::atof(s);
    return p;
  }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Timing {
  std::vector<double> per_step_s;
  long k = 0, warmup = 0;
  double median() const {
    std::vector<double> v = per_step_s;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
  double min() const { return *std::min_element(per_step_s.begin(), per_step_s.end()); }
  double max() const { return *std::max_element(per_step_s.begin(), per_step_s.end()); }
};

Timing time_steps(const std::function<void()>& step) {
  const Protocol p = Protocol::from_env();
  Timing t;
  const double t0 = now_s();
  while (t.warmup < p.warmup_steps || now_s() - t0 < p.warmup_s) {
    step();
    ++t.warmup;
  }
  const double t1 = now_s();
  for (int i = 0; i < 5; ++i) step();
  t.k = std::max<long>(1, static_cast<long>(std::ceil(p.target_s / std::max((now_s() - t1) / 5, 1e-9))));
  for (int r = 0; r < p.repeats; ++r) {
    const double ts = now_s();
    for (long i = 0; i < t.k; ++i) step();
    t.per_step_s.push_back((now_s() - ts) / static_cast<double>(t.k));
  }
  return t;
}

int g_threads = 1;
bool g_jit_only = false;  // --jit-only: skip the eager rows (for profiling the compiled step)

void emit_time(const std::string& workload, const std::string& peer, const Timing& t) {
  std::printf(
      "{\"kind\":\"time\",\"workload\":\"%s\",\"peer\":\"%s\",\"threads\":%d,\"median_us\":%.4f,\"min_us\":%.4f,"
      "\"max_us\":%.4f,\"k\":%ld,\"repeats\":%zu,\"warmup_steps\":%ld,\"note\":\"\"}\n",
      workload.c_str(), peer.c_str(), g_threads, t.median() * 1e6, t.min() * 1e6, t.max() * 1e6, t.k,
      t.per_step_s.size(), t.warmup);
  std::fflush(stdout);
}

void emit_check(const std::string& workload, const std::string& peer, const std::vector<double>& losses) {
  const std::size_t n = losses.size(), w = std::min<std::size_t>(8, n);
  double first = 0, last = 0;
  for (std::size_t i = 0; i < w; ++i) first += losses[i] / static_cast<double>(w);
  for (std::size_t i = n - w; i < n; ++i) last += losses[i] / static_cast<double>(w);
  const bool ok = std::isfinite(first) && std::isfinite(last) && last < 0.7 * first;
  std::printf(
      "{\"kind\":\"check\",\"workload\":\"%s\",\"peer\":\"%s\",\"threads\":%d,\"steps\":%zu,\"loss_first\":%.6g,"
      "\"loss_last\":%.6g,\"ok\":%s,\"note\":\"\"}\n",
      workload.c_str(), peer.c_str(), g_threads, n, first, last, ok ? "true" : "false");
  std::fflush(stdout);
}

// ------------------------------------------------------------------ data

constexpr int kPool = 8;

struct Batch {
  Array x, y;
};

/// W2/W3 labels: argmax_k ((x - 0.5) @ teacher)[k] on the flattened pixels.
Array teacher_labels(const Array& x, const Array& teacher) {
  const Array flat = eqx::reshape(x, {x.shape()[0], 784});
  return eqx::argmax(eqx::matmul(flat - 0.5f, teacher), 1);
}

std::vector<Batch> pool(const std::string& w, std::uint32_t seed) {
  std::vector<Batch> out;
  auto keys = eqx::random::split_keys(eqx::random::key(seed), kPool + 1);
  const Array teacher = eqx::random::normal(keys[kPool], {784, 10});
  for (int i = 0; i < kPool; ++i) {
    const auto& k = keys[i];
    if (w == "W1") {
      Array x = eqx::random::uniform(k, {32, 2}, eqx::float32, -1.0, 1.0);
      Array x0 = eqx::slice(x, 1, 0, 1), x1 = eqx::slice(x, 1, 1, 2);
      out.push_back({x, x0 * x1 + 0.5f * x0 - 0.25f * x1});
    } else if (w == "W2") {
      Array x = eqx::random::uniform(k, {128, 784});
      out.push_back({x, teacher_labels(x, teacher)});
    } else if (w == "W3") {
      Array x = eqx::random::uniform(k, {64, 1, 28, 28});
      out.push_back({x, teacher_labels(x, teacher)});
    } else if (w == "W4") {
      Array x = eqx::random::uniform(k, {32, 100, 2}, eqx::float32, -1.0, 1.0);
      Array tail = eqx::slice(eqx::slice(x, 1, 90, 100), 2, 0, 1);  // [32, 10, 1]
      out.push_back({x, eqx::sum(tail, {1}) / std::sqrt(10.0f)});
    }
  }
  return out;
}

// ------------------------------------------------------------------ models

/// W3: Equinox's MNIST CNN with WORKLOADS.md's ReLU after the first Linear.
auto make_cnn(const eqx::random::Key& key) {
  auto k = eqx::random::split_keys(key, 4);
  return nn::sequential(nn::Conv2d::init(1, 3, 4, k[0]), nn::MaxPool2d::init(2, {.stride = 1}),
                        nn::Lambda{nn::Activation(nn::relu)}, nn::Lambda{nn::Activation(eqx::ravel)},
                        nn::Linear::init(1728, 512, k[1]), nn::Lambda{nn::Activation(nn::relu)},
                        nn::Linear::init(512, 64, k[2]), nn::Lambda{nn::Activation(nn::relu)},
                        nn::Linear::init(64, 10, k[3]), nn::Lambda{nn::Activation(nn::log_softmax)});
}
using Cnn = decltype(make_cnn(eqx::random::key(0)));

/// W4: a GRU over one sequence [100, 2], then Linear(64 -> 1) on h_100.
struct GruRegressor {
  nn::GRUCell cell;
  nn::Linear head;
  static GruRegressor init(const eqx::random::Key& key) {
    auto k = eqx::random::split_keys(key, 2);
    return {nn::GRUCell::init(2, 64, k[0]), nn::Linear::init(64, 1, k[1])};
  }
  Array operator()(const Array& xs) const {
    auto step = [&](const Array& h, const Array& x) { return std::pair{cell(x, h), std::tuple<>{}}; };
    return head(eqx::scan(step, eqx::zeros({64}), xs).first);
  }
};

// Losses over a batch: the models see one example; filter_vmap batches them.
template <class Model>
Array mse(const Model& m, const Array& x, const Array& y) {
  const Array d = eqx::filter_vmap(m)(x) - y;
  return eqx::mean(d * d);
}
template <class Model>
Array cross_entropy(const Model& m, const Array& x, const Array& labels) {
  return eqx::mean(optim::softmax_cross_entropy_with_integer_labels(eqx::filter_vmap(m)(x), labels));
}
template <class Model>
Array nll(const Model& m, const Array& x, const Array& labels) {
  return -eqx::mean(eqx::sum(eqx::filter_vmap(m)(x) * eqx::one_hot(labels, 10), 1));
}

/// The training step every workload uses: value_and_grad, update, apply.
template <class Model, class Opt, class Loss>
auto train_step(Opt opt, Loss loss) {
  return [opt, loss](const Model& model, const auto& state, const Array& x, const Array& y) {
    auto [value, grads] = eqx::filter_value_and_grad(loss)(model, x, y);
    auto [updates, next] = opt.update(grads, state, eqx::filter(model, eqx::is_array));
    return std::tuple{eqx::apply_updates(model, updates), next, value};
  };
}

/// Times `step` (jitted or not) on the pool, continuing training from
/// `model`, and with --check trains a fresh model from `fresh`.
template <class Model, class Opt, class Step>
void run_training(const std::string& w, const std::string& peer, Model model, const Model& fresh, const Opt& opt,
                  Step step, int check_steps, bool check) {
  const auto data = pool(w, 1), check_data = pool(w, 2);
  auto state = opt.init(eqx::filter(model, eqx::is_array));
  long s = 0;
  Timing t = time_steps([&] {
    const Batch& b = data[s++ % kPool];
    std::tie(model, state, std::ignore) = step(model, state, b.x, b.y);
  });
  emit_time(w, peer, t);
  if (!check) return;
  Model m = fresh;
  auto st = opt.init(eqx::filter(m, eqx::is_array));
  std::vector<double> losses;
  for (int i = 0; i < check_steps; ++i) {
    Array value;
    const Batch& b = check_data[i % kPool];
    std::tie(m, st, value) = step(m, st, b.x, b.y);
    losses.push_back(value.item<float>());
  }
  emit_check(w, peer, losses);
}

template <class Model, class Opt, class Loss>
void run_both(const std::string& w, const Model& model, const Model& fresh, const Opt& opt, Loss loss,
              int check_steps, bool check, bool eager) {
  auto step = train_step<Model>(opt, loss);
  auto jitted = eqx::filter_jit(step);
  if (const char* which = std::getenv("EQX_WORKLOADS_PRINT_PLAN"); which != nullptr && w == which) {
    const Batch b = pool(w, 1)[0];
    const eqx::Plan& plan = jitted.plan(model, opt.init(eqx::filter(model, eqx::is_array)), b.x, b.y);
    std::fprintf(stderr, "%s jitted step (%zu instructions):\n%s\n", w.c_str(), plan.memory_stats().num_instructions,
                 eqx::to_string(plan.graph()).c_str());
  }
  run_training(w, "eqx-jit", model, fresh, opt, jitted, check_steps, check);
  if (eager && !g_jit_only) run_training(w, "eqx-eager", model, fresh, opt, step, check_steps, check);
}

void run_w1(bool check) {
  auto make = [](std::uint32_t seed) { return nn::MLP::init(2, 1, 64, 2, eqx::random::key(seed)); };
  run_both("W1", make(10), make(11), optim::sgd(0.01), mse<nn::MLP>, 500, check, true);
}

void run_w2(bool check) {
  auto make = [](std::uint32_t seed) { return nn::MLP::init(784, 10, 512, 2, eqx::random::key(seed)); };
  run_both("W2", make(20), make(21), optim::adam(1e-3), cross_entropy<nn::MLP>, 300, check, true);
}

void run_w3(bool check) {
  run_both("W3", make_cnn(eqx::random::key(30)), make_cnn(eqx::random::key(31)), optim::adam(3e-4), nll<Cnn>, 300,
           check, false);
}

void run_w4(bool check) {
  run_both("W4", GruRegressor::init(eqx::random::key(40)), GruRegressor::init(eqx::random::key(41)),
           optim::adam(1e-3), mse<GruRegressor>, 300, check, false);
}

/// W5: x + 0.1 (even j), x * 0.99 (odd j), 100 times, on [16].
Array chain(Array x) {
  for (int j = 0; j < 100; ++j) x = j % 2 == 0 ? x + 0.1f : x * 0.99f;
  return x;
}

double w5_error(const Array& got) {
  const std::vector<float> g = got.to_vector<float>();
  double worst = 0;
  for (int i = 0; i < 16; ++i) {
    double ref = i / 16.0;
    for (int j = 0; j < 100; ++j) ref = j % 2 == 0 ? ref + 0.1 : ref * 0.99;
    worst = std::max(worst, std::abs(g[i] - ref) / std::abs(ref));
  }
  return worst;
}

void run_w5(bool check) {
  const Array x0 = eqx::astype(eqx::arange(16), eqx::float32) / 16.0f;
  auto fused = eqx::filter_jit(chain);
  if (const char* which = std::getenv("EQX_WORKLOADS_PRINT_PLAN"); which != nullptr && std::string_view(which) == "W5")
    std::fprintf(stderr, "W5 jitted chain:\n%s\n", eqx::to_string(fused.plan(x0).graph()).c_str());
  for (auto [peer, f] : {std::pair<const char*, std::function<Array(Array)>>{"eqx-eager", chain},
                         {"eqx-jit-fused", fused}}) {
    if (g_jit_only && std::string_view(peer) == "eqx-eager") continue;
    Array out;
    emit_time("W5", peer, time_steps([&] { out = f(x0); }));
    if (check) {
      const double err = w5_error(f(x0));
      std::printf(
          "{\"kind\":\"check\",\"workload\":\"W5\",\"peer\":\"%s\",\"threads\":%d,\"max_rel_err\":%.3g,\"tol\":1e-4,"
          "\"ok\":%s,\"note\":\"\"}\n",
          peer, g_threads, err, err <= 1e-4 ? "true" : "false");
    }
  }
}

void run_w6() {
  const nn::MLP model = nn::MLP::init(784, 10, 512, 2, eqx::random::key(60));
  const Array x = eqx::random::uniform(eqx::random::key(61), {784});
  auto jitted = eqx::filter_jit([](const nn::MLP& m, const Array& x) { return m(x); });
  Array out;
  emit_time("W6", "eqx-jit", time_steps([&] { out = jitted(model, x); }));
  if (!g_jit_only) emit_time("W6", "eqx-eager", time_steps([&] { out = model(x); }));
}

// ------------------------------------------------------------------ sweep

/// The W2 step (MLP 784 -> width -> width -> 10, Adam) over widths at batch
/// 128 and over batches at width 512: GFLOP/s of its GEMMs (3 x forward).
void run_sweep() {
  auto one = [](std::int64_t width, std::int64_t batch) {
    nn::MLP model = nn::MLP::init(784, 10, width, 2, eqx::random::key(70));
    const auto opt = optim::adam(1e-3);
    auto state = opt.init(eqx::filter(model, eqx::is_array));
    const Array x = eqx::random::uniform(eqx::random::key(71), {batch, 784});
    const Array y = eqx::random::randint(eqx::random::key(72), {batch}, 0, 10);
    auto step = eqx::filter_jit(train_step<nn::MLP>(opt, cross_entropy<nn::MLP>));
    Timing t = time_steps([&] { std::tie(model, state, std::ignore) = step(model, state, x, y); });
    const double flops = 6.0 * static_cast<double>(batch) * (784.0 * width + width * width + width * 10.0);
    std::printf(
        "{\"kind\":\"sweep\",\"peer\":\"eqx-jit\",\"threads\":%d,\"width\":%ld,\"batch\":%ld,\"median_us\":%.4f,"
        "\"gflops\":%.3f}\n",
        g_threads, static_cast<long>(width), static_cast<long>(batch), t.median() * 1e6, flops / t.median() / 1e9);
    std::fflush(stdout);
  };
  for (std::int64_t width : {64, 128, 256, 512, 1024, 2048}) one(width, 128);
  for (std::int64_t batch : {1, 8, 32, 512}) one(512, batch);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> workloads{"W1", "W2", "W3", "W4", "W5", "W6"};
  bool check = false, sweep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) g_threads = std::atoi(argv[++i]);
    else if (a == "--workloads" && i + 1 < argc) workloads = split(argv[++i]);
    else if (a == "--check") check = true;
    else if (a == "--sweep") sweep = true;
    else if (a == "--jit-only") g_jit_only = true;
    else {
      std::fprintf(stderr, "usage: %s --threads N [--workloads W1,...] [--check] [--sweep] [--jit-only]\n", argv[0]);
      return 2;
    }
  }
  eqx::set_num_threads(g_threads);
  const eqx::BuildInfo info = eqx::build_info();
  std::printf("{\"kind\":\"info\",\"peer\":\"eqx\",\"threads\":%d,\"isa\":\"%s\",\"cpu\":\"%s\",\"gemm\":\"%s\"}\n",
              g_threads, info.isa.c_str(), info.cpu.c_str(), info.gemm.c_str());
  if (sweep) {
    run_sweep();
    return 0;
  }
  for (const std::string& w : workloads) {
    if (w == "W1") run_w1(check);
    else if (w == "W2") run_w2(check);
    else if (w == "W3") run_w3(check);
    else if (w == "W4") run_w4(check);
    else if (w == "W5") run_w5(check);
    else if (w == "W6") run_w6();
    else {
      std::fprintf(stderr, "eqx_workloads: unknown workload '%s' (W1..W6)\n", w.c_str());
      return 2;
    }
  }
}
