// eqx::dist under `mpirun -np 2` and `-np 3` (tests/CMakeLists.txt): pytree
// collectives with real values, bucketing, the structure check's errors,
// data-parallel training against single-process training, and checkpoints
// written on one number of ranks and resumed on another.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <eqx/dist.hpp>
#include <eqx/eqx.hpp>

#include "check.hpp"

using eqx::Array;
using eqx_test::check;
using eqx_test::message_of;
namespace dist = eqx::dist;
namespace nn = eqx::nn;

namespace {

struct Mixed {
  Array weight;  // f32
  Array wide;    // f64
  Array count;   // i32
  Array flag;    // bool
  int tag = 0;   // static: kept as each rank has it
};

std::vector<float> repeat(float v, std::size_t n) { return std::vector<float>(n, v); }

/// FNV-1a of every leaf's bytes: equal iff the parameters are bit-identical.
std::uint32_t bytes_hash(const std::vector<Array>& leaves) {
  std::uint32_t h = 2166136261u;
  for (const Array& a : leaves) {
    const auto* p = static_cast<const unsigned char*>(a.raw_data());
    for (std::size_t i = 0; i < static_cast<std::size_t>(a.size()) * eqx::itemsize(a.dtype()); ++i)
      h = (h ^ p[i]) * 16777619u;
  }
  return h;
}

/// True if every rank's tree is bit-identical to rank 0's.
template <class T>
bool identical_on_every_rank(const T& tree) {
  std::vector<std::uint32_t> hashes = dist::allgather(eqx::array<std::uint32_t>({bytes_hash(eqx::tree_leaves(tree))}))
                                          .template to_vector<std::uint32_t>();
  for (std::uint32_t h : hashes)
    if (h != hashes[0]) return false;
  return true;
}

// ---- the training problem: y = sum(x) on 48 points, a 4-8-1 MLP, SGD
constexpr std::int64_t kExamples = 48;
constexpr std::int64_t kGlobalBatch = 12;  // a multiple of 2 and of 3

Array loss_fn(const nn::MLP& model, const Array& xs, const Array& ys) {
  return eqx::mean(eqx::square(eqx::filter_vmap(model)(xs) - ys));
}

struct Problem {
  Array xs = eqx::random::uniform(eqx::random::key(1), {kExamples, 4}, eqx::float32, -1.0, 1.0);
  Array ys = eqx::sum(xs, {1}, /*keepdims=*/true);
  nn::MLP model = nn::MLP::init(4, 1, 8, 1, eqx::random::key(2), {.activation = eqx::tanh});
  // SGD with momentum: unlike Adam, its step scales with the gradient, so a
  // sum where a mean belongs would show.
  decltype(eqx::optim::sgd(0.1)) optimiser = eqx::optim::sgd(0.1, {.momentum = 0.9});
};


/// `epochs` epochs from `epoch0` on: one process, each global batch whole.
template <class State>
std::pair<nn::MLP, State> train_single(const Problem& p, nn::MLP model, State state, int epoch0, int epochs) {
  auto grad = eqx::filter_jit(eqx::filter_value_and_grad(loss_fn));
  for (int e = epoch0; e < epoch0 + epochs; ++e)
    for (const Array& idx : eqx::data::batch_indices(eqx::random::key(100 + e), kExamples, kGlobalBatch)) {
      auto [loss, g] = grad(model, eqx::take(p.xs, idx, 0), eqx::take(p.ys, idx, 0));
      auto [updates, next] = p.optimiser.update(g, state, model);
      model = eqx::apply_updates(model, updates);
      state = next;
    }
  return {model, state};
}

/// The same epochs data-parallel: this rank's shard of each global batch,
/// gradients averaged across ranks. Checks the ranks stay bit-identical.
template <class State>
std::pair<nn::MLP, State> train_parallel(const Problem& p, nn::MLP model, State state, int epoch0, int epochs) {
  auto grad = eqx::filter_jit(eqx::filter_value_and_grad(loss_fn));
  int step = 0;
  for (int e = epoch0; e < epoch0 + epochs; ++e)
    for (const Array& idx : dist::shard_batch_indices(eqx::random::key(100 + e), kExamples, kGlobalBatch,
                                                      dist::rank(), dist::size())) {
      auto [loss, g] = grad(model, eqx::take(p.xs, idx, 0), eqx::take(p.ys, idx, 0));
      g = dist::tree_allreduce(g, dist::Reduce::mean);
      auto [updates, next] = p.optimiser.update(g, state, model);
      model = eqx::apply_updates(model, updates);
      state = next;
      if (++step % 2 == 0) CHECK(identical_on_every_rank(model));
    }
  return {model, state};
}

void check_close(const nn::MLP& got, const nn::MLP& want) {
  std::vector<Array> g = eqx::tree_leaves(got), w = eqx::tree_leaves(want);
  REQUIRE(g.size() == w.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    std::vector<float> a = g[i].to_vector<float>(), b = w[i].to_vector<float>();
    for (std::size_t k = 0; k < a.size(); ++k) CHECK(a[k] == Approx(b[k]).epsilon(1e-4).margin(1e-5));
  }
}

std::filesystem::path work_dir() {
  const char* dir = std::getenv("EQX_DIST_WORK_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::temp_directory_path();
}

}  // namespace

TEST_CASE("dist: ranks and sizes", "[dist]") {
  CHECK(dist::size() >= 2);
  CHECK(dist::rank() >= 0);
  CHECK(dist::rank() < dist::size());
}

TEST_CASE("dist::tree_allreduce: sum, mean and max of every leaf", "[dist]") {
  const int r = dist::rank(), n = dist::size();
  const float tri = float(n * (n + 1) / 2);
  Mixed mine{eqx::full({2, 3}, float(r + 1)), eqx::array<double>({double(r), -double(r)}),
             eqx::array<std::int32_t>({r + 1}), eqx::array<bool>({r == 1}), r};
  Mixed sum = dist::tree_allreduce(mine);
  check<float>(sum.weight, {2, 3}, repeat(tri, 6));
  check<double>(sum.wide, {2}, {double(n * (n - 1) / 2), -double(n * (n - 1) / 2)});
  check<std::int32_t>(sum.count, {1}, {n * (n + 1) / 2});
  check<bool>(sum.flag, {1}, {true});
  CHECK(sum.tag == r);
  Mixed max = dist::tree_allreduce(mine, dist::Reduce::max);
  check<float>(max.weight, {2, 3}, repeat(float(n), 6));
  check<double>(max.wide, {2}, {double(n - 1), 0.0});
  check<std::int32_t>(max.count, {1}, {n});
  struct Floats {
    Array a, b;
  };
  Floats mean = dist::tree_allreduce(Floats{eqx::full({3}, float(r)), eqx::full({1}, 2.0 * r, eqx::float64)},
                                     dist::Reduce::mean);
  check<float>(mean.a, {3}, repeat(float(n - 1) / 2, 3));
  check<double>(mean.b, {1}, {double(n - 1)});
  CHECK(message_of<eqx::DTypeError>([&] { dist::tree_allreduce(mine, dist::Reduce::mean); }) ==
        "eqx::dist::tree_allreduce: Reduce::mean needs floating leaves, but .count is i32[1]; reduce it with "
        "Reduce::sum, or convert it to float32 first");
}

TEST_CASE("dist::tree_allreduce: buckets give the same sums, one MPI call per bucket", "[dist]") {
  const int n = dist::size();
  auto leaves_of = [](int rank) {
    std::vector<Array> leaves;
    for (int k = 1; k <= 10; ++k)
      leaves.push_back(eqx::random::normal(eqx::random::key(std::uint32_t(10 * rank + k)), {k}));
    return leaves;
  };
  // Every rank can compute the expected sum itself.
  std::vector<Array> want = leaves_of(0);
  for (int q = 1; q < n; ++q) {
    std::vector<Array> other = leaves_of(q);
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = want[i] + other[i];
  }
  const std::vector<Array> mine = leaves_of(dist::rank());
  dist::comm_stats() = {};
  std::vector<Array> one_bucket = dist::tree_allreduce(mine);
  CHECK(dist::comm_stats().calls == 1);
  CHECK(dist::comm_stats().bytes == 4 * 55);
  // 16-byte buckets over leaves of 4, 8, ..., 40 bytes: {4, 8}, then each
  // later leaf alone (12 + 16 > 16): 9 calls.
  dist::comm_stats() = {};
  std::vector<Array> small = dist::tree_allreduce(mine, dist::Reduce::sum, {.bucket_bytes = 16});
  CHECK(dist::comm_stats().calls == 9);
  CHECK(dist::comm_stats().bytes == 4 * 55);
  for (std::size_t i = 0; i < want.size(); ++i) {
    check<float>(one_bucket[i], want[i].shape(), want[i].to_vector<float>());
    CHECK(bytes_hash({small[i]}) == bytes_hash({one_bucket[i]}));  // the same reduction, bit for bit
  }
}

TEST_CASE("dist::tree_broadcast: every rank gets the root's tree", "[dist]") {
  const int n = dist::size();
  auto model_of = [](int rank) { return nn::MLP::init(3, 2, 4, 1, eqx::random::key(std::uint32_t(rank))); };
  for (int root : {0, n - 1}) {
    nn::MLP got = dist::tree_broadcast(model_of(dist::rank()), root, {.bucket_bytes = 64});
    CHECK(eqx::tree_equal(got, model_of(root)));
  }
  CHECK(message_of<eqx::ValueError>([&] { dist::tree_broadcast(model_of(0), n); }) ==
        "eqx::dist::tree_broadcast: root " + std::to_string(n) + " is not a rank of this job (0.." +
            std::to_string(n - 1) + ")");
}

TEST_CASE("dist::allgather: every rank's metric, stacked", "[dist]") {
  const int n = dist::size();
  Array losses = dist::allgather(eqx::array(1.5f * float(dist::rank())));
  std::vector<float> want;
  for (int q = 0; q < n; ++q) want.push_back(1.5f * float(q));
  check<float>(losses, {n}, want);
}

TEST_CASE("dist: trees that differ between ranks are an error on every rank, naming the leaf", "[dist]") {
  struct Layer {
    Array weight, bias;
  };
  struct Model {
    std::vector<Layer> layers;
  };
  const std::int64_t in = dist::rank() == 1 ? 2 : 3;  // rank 1 built its second layer differently
  Model m{{Layer{eqx::ones({4, 3}), eqx::zeros({4})}, Layer{eqx::ones({4, in}), eqx::zeros({4})}}};
  CHECK(message_of<eqx::ShapeError>([&] { dist::tree_allreduce(m); }) ==
        "eqx::dist::tree_allreduce: the ranks' trees differ at leaf 2: rank 0 has .layers[1].weight f32[4,3] but "
        "rank 1 has .layers[1].weight f32[4,2]; every rank must pass a tree of the same structure, shapes and dtypes "
        "(the same model, and batches of the same size)");
  // Inside a transformation the leaves are traced: a clear error, before any communication.
  CHECK(message_of<eqx::TraceError>([&] {
          eqx::filter_jit([](const Array& x) { return dist::tree_allreduce(x); })(eqx::ones({2}));
        }) == "eqx::dist::tree_allreduce: the leaf at (root) is being traced (inside filter_jit, filter_grad or "
              "filter_vmap); call it outside, on the values the transformed function returns");
  CHECK(message_of<eqx::ValueError>([&] { dist::shard_batch_indices(eqx::random::key(0), 10, 5, 0, 2); }) ==
        "eqx::dist::shard_batch_indices: the global batch (5) must be a positive multiple of the number of ranks "
        "(2), so every rank gets a shard of the same size; choose a batch of 6 or run on a divisor of it");
}

TEST_CASE("dist: shards of a global batch are disjoint and cover it", "[dist]") {
  const int n = dist::size();
  std::vector<Array> mine = dist::shard_batch_indices(eqx::random::key(5), kExamples, kGlobalBatch, dist::rank(), n);
  std::vector<Array> whole = eqx::data::batch_indices(eqx::random::key(5), kExamples, kGlobalBatch);
  REQUIRE(mine.size() == whole.size());
  for (std::size_t b = 0; b < mine.size(); ++b) {
    Array all = dist::allgather(mine[b]);  // [n, global / n], in rank order
    CHECK(all.to_vector<std::int32_t>() == whole[b].to_vector<std::int32_t>());
  }
}

TEST_CASE("dist: data-parallel training equals single-process training; ranks stay bit-identical", "[dist]") {
  Problem p;
  auto state = p.optimiser.init(eqx::filter(p.model, eqx::is_inexact_array));
  auto [single, s1] = train_single(p, p.model, state, 0, 2);
  auto [parallel, s2] = train_parallel(p, p.model, state, 0, 2);
  CHECK(identical_on_every_rank(parallel));
  check_close(parallel, single);
  // It trained: the loss on all the data fell.
  INFO("loss before " << loss_fn(p.model, p.xs, p.ys).item<float>() << " after " << loss_fn(parallel, p.xs, p.ys).item<float>());
  CHECK(loss_fn(parallel, p.xs, p.ys).item<float>() < 0.5f * loss_fn(p.model, p.xs, p.ys).item<float>());
  // Checkpoint from rank 0; read back on every rank, bit for bit.
  const auto file = work_dir() / ("dp_np" + std::to_string(dist::size()) + ".eqx");
  dist::save_checkpoint(file, std::tuple{parallel, s2});
  auto [loaded, loaded_state] = dist::load_checkpoint(file, std::tuple{p.model, state});
  CHECK(eqx::tree_equal(loaded, parallel));
  CHECK(eqx::tree_equal(loaded_state, s2));
  CHECK(message_of<eqx::IOError>([&] { dist::load_checkpoint(work_dir() / "missing.eqx", p.model); })
            .starts_with("eqx::dist::load_checkpoint: rank 0 could not read the checkpoint: "));
}

// Run by ctest only with -np 3, after the -np 2 run wrote dp_np2.eqx.
TEST_CASE("dist: a checkpoint written by 2 ranks resumes on this job's ranks", "[dist][resume]") {
  const auto file = work_dir() / "dp_np2.eqx";
  if (!std::filesystem::exists(file)) EQX_TEST_SKIP("no checkpoint from a 2-rank run at " + file.string());
  Problem p;
  auto state = p.optimiser.init(eqx::filter(p.model, eqx::is_inexact_array));
  auto [model, resumed_state] = dist::load_checkpoint(file, std::tuple{p.model, state});
  auto [continued, s] = train_parallel(p, model, resumed_state, 2, 1);
  // The same 3 epochs in one process.
  auto [single, s1] = train_single(p, p.model, state, 0, 3);
  CHECK(identical_on_every_rank(continued));
  check_close(continued, single);
}
