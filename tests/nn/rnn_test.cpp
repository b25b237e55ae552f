// eqx::nn::GRUCell and LSTMCell: one step and whole sequences (through
// eqx::scan) against PyTorch (tests/nn/fixtures_rnn.py: torch.nn.GRUCell,
// torch.nn.LSTMCell, torch.nn.GRU and torch.nn.LSTM in float64, mapped to
// Equinox's parameters as
//   GRU:  bias = b_ih + [b_hh_r, b_hh_z, 0], bias_n = b_hh_n,
//         grad_bias = grad b_ih,            grad_bias_n = grad b_hh_n;
//   LSTM: bias = b_ih + b_hh,               grad_bias = grad b_ih;
// the weights are the same [gates*h, in] / [gates*h, h] blocks in the same
// gate order), Equinox's initialisation, vmap/jit, printing, serialisation
// order and misuse.

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/nn/rnn.hpp>

#include "check.hpp"
#include "nn/fixtures.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace nn_rnn_test {

namespace nn = eqx::nn;
using eqx_test::check_close;
using eqx_test::fixture;

namespace {

eqx::Array fx(std::string_view c, std::string_view name, eqx::DType dtype) { return eqx::astype(fixture(c, name), dtype); }

nn::GRUCell gru_from(std::string_view c, bool use_bias, eqx::DType dtype) {
  eqx::Array w = fx(c, "weight_ih", dtype);
  auto cell = nn::GRUCell::init(w.shape()[1], w.shape()[0] / 3, eqx::random::key(0), {.use_bias = use_bias, .dtype = dtype});
  cell.weight_ih = w;
  cell.weight_hh = fx(c, "weight_hh", dtype);
  if (use_bias) cell.bias = fx(c, "bias", dtype), cell.bias_n = fx(c, "bias_n", dtype);
  return cell;
}

nn::LSTMCell lstm_from(std::string_view c, bool use_bias, eqx::DType dtype) {
  eqx::Array w = fx(c, "weight_ih", dtype);
  auto cell = nn::LSTMCell::init(w.shape()[1], w.shape()[0] / 4, eqx::random::key(0), {.use_bias = use_bias, .dtype = dtype});
  cell.weight_ih = w;
  cell.weight_hh = fx(c, "weight_hh", dtype);
  if (use_bias) cell.bias = fx(c, "bias", dtype);
  return cell;
}

template <class Cell>
void check_param_grads(const Cell& g, std::string_view c, bool use_bias, double rtol) {
  check_close(g.weight_ih, fixture(c, "grad_weight_ih"), rtol, "grad_weight_ih");
  check_close(g.weight_hh, fixture(c, "grad_weight_hh"), rtol, "grad_weight_hh");
  if (use_bias) {
    check_close(g.bias, fixture(c, "grad_bias"), rtol, "grad_bias");
    if constexpr (std::is_same_v<Cell, nn::GRUCell>) check_close(g.bias_n, fixture(c, "grad_bias_n"), rtol, "grad_bias_n");
  } else {
    CHECK_FALSE(g.bias.has_value());
  }
}

void check_gru_cell(std::string_view c, bool use_bias, eqx::DType dtype, double rtol) {
  INFO(c << " in " << eqx::dtype_name(dtype));
  nn::GRUCell cell = gru_from(c, use_bias, dtype);
  eqx::Array x = fx(c, "x", dtype), h = fx(c, "h", dtype), ct = fx(c, "ct", dtype);
  eqx::Array y = cell(x, h);
  CHECK(y.dtype() == dtype);
  check_close(y, fixture(c, "y"), rtol, "y");
  auto loss = [](const std::tuple<nn::GRUCell, eqx::Array, eqx::Array>& p, const eqx::Array& ct) {
    return eqx::sum(std::get<0>(p)(std::get<1>(p), std::get<2>(p)) * ct);
  };
  auto [g, gx, gh] = eqx::filter_grad(loss)(std::tuple{cell, x, h}, ct);
  check_close(gx, fixture(c, "grad_x"), rtol, "grad_x");
  check_close(gh, fixture(c, "grad_h"), rtol, "grad_h");
  check_param_grads(g, c, use_bias, rtol);
}

void check_lstm_cell(std::string_view c, bool use_bias, eqx::DType dtype, double rtol) {
  INFO(c << " in " << eqx::dtype_name(dtype));
  nn::LSTMCell cell = lstm_from(c, use_bias, dtype);
  eqx::Array x = fx(c, "x", dtype), h = fx(c, "h", dtype), cs = fx(c, "c", dtype);
  auto [yh, yc] = cell(x, std::pair{h, cs});
  check_close(yh, fixture(c, "y_h"), rtol, "y_h");
  check_close(yc, fixture(c, "y_c"), rtol, "y_c");
  auto loss = [](const std::tuple<nn::LSTMCell, eqx::Array, eqx::Array, eqx::Array>& p, const eqx::Array& ct_h,
                 const eqx::Array& ct_c) {
    auto [h, c] = std::get<0>(p)(std::get<1>(p), std::pair{std::get<2>(p), std::get<3>(p)});
    return eqx::sum(h * ct_h) + eqx::sum(c * ct_c);
  };
  auto [g, gx, gh, gc] = eqx::filter_grad(loss)(std::tuple{cell, x, h, cs}, fx(c, "ct_h", dtype), fx(c, "ct_c", dtype));
  check_close(gx, fixture(c, "grad_x"), rtol, "grad_x");
  check_close(gh, fixture(c, "grad_h"), rtol, "grad_h");
  check_close(gc, fixture(c, "grad_c"), rtol, "grad_c");
  check_param_grads(g, c, use_bias, rtol);
}

/// Every hidden state of a GRU run over xs [T, in] from h0, by eqx::scan.
eqx::Array run_gru(const nn::GRUCell& cell, const eqx::Array& xs, const eqx::Array& h0) {
  auto step = [&](const eqx::Array& h, const eqx::Array& x) {
    eqx::Array next = cell(x, h);
    return std::pair{next, next};
  };
  return eqx::scan(step, h0, xs).second;
}

/// Every h of an LSTM run over xs, and the final c, by eqx::scan.
std::pair<eqx::Array, eqx::Array> run_lstm(const nn::LSTMCell& cell, const eqx::Array& xs,
                                           const std::pair<eqx::Array, eqx::Array>& state0) {
  auto step = [&](const std::pair<eqx::Array, eqx::Array>& state, const eqx::Array& x) {
    auto next = cell(x, state);
    return std::pair{next, next.first};
  };
  auto [final_state, hs] = eqx::scan(step, state0, xs);
  return {hs, final_state.second};
}

/// Uniform in [-lim, lim): bounds, range used, mean and variance within
/// about 5 standard errors.
void check_uniform(const eqx::Array& p, double lim) {
  std::vector<double> v = eqx::astype(p, eqx::float64).to_vector<double>();
  double mean = 0, sq = 0, lo = 1e9, hi = -1e9;
  for (double f : v) mean += f, sq += f * f, lo = std::min(lo, f), hi = std::max(hi, f);
  mean /= v.size();
  const double var = sq / v.size() - mean * mean;
  CHECK(lo >= -lim);
  CHECK(hi < lim);
  CHECK(hi - lo > 1.9 * lim);
  CHECK(std::abs(mean) < 5 * lim / std::sqrt(3.0 * v.size()));
  CHECK(var == Approx(lim * lim / 3).epsilon(5 * std::sqrt(0.8 / v.size())));
}

}  // namespace

TEST_CASE("nn::GRUCell matches torch.nn.GRUCell: forward and gradients (float64 and float32)", "[nn]") {
  check_gru_cell("gru_cell", true, eqx::float64, 1e-10);
  check_gru_cell("gru_cell", true, eqx::float32, 1e-5);
  check_gru_cell("gru_cell_nobias", false, eqx::float64, 1e-10);
  check_gru_cell("gru_cell_nobias", false, eqx::float32, 1e-5);
}

TEST_CASE("nn::LSTMCell matches torch.nn.LSTMCell: forward and gradients (float64 and float32)", "[nn]") {
  check_lstm_cell("lstm_cell", true, eqx::float64, 1e-10);
  check_lstm_cell("lstm_cell", true, eqx::float32, 1e-5);
  check_lstm_cell("lstm_cell_nobias", false, eqx::float64, 1e-10);
  check_lstm_cell("lstm_cell_nobias", false, eqx::float32, 1e-5);
}

TEST_CASE("nn::GRUCell in eqx::scan matches torch.nn.GRU over a sequence, with gradients", "[nn]") {
  const std::string_view c = "gru_seq";
  for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    INFO(eqx::dtype_name(dtype));
    nn::GRUCell cell = gru_from(c, true, dtype);
    eqx::Array xs = fx(c, "xs", dtype), h0 = fx(c, "h0", dtype);
    check_close(run_gru(cell, xs, h0), fixture(c, "hs"), rtol, "hs");
    auto loss = [](const std::tuple<nn::GRUCell, eqx::Array, eqx::Array>& p, const eqx::Array& ct) {
      return eqx::sum(run_gru(std::get<0>(p), std::get<1>(p), std::get<2>(p)) * ct);
    };
    auto grads = eqx::filter_jit(eqx::filter_grad(loss));
    auto [g, gxs, gh0] = grads(std::tuple{cell, xs, h0}, fx(c, "ct", dtype));
    check_close(gxs, fixture(c, "grad_xs"), rtol, "grad_xs");
    check_close(gh0, fixture(c, "grad_h0"), rtol, "grad_h0");
    check_param_grads(g, c, true, rtol);
  }
}

TEST_CASE("nn::LSTMCell in eqx::scan matches torch.nn.LSTM over a sequence, with gradients", "[nn]") {
  const std::string_view c = "lstm_seq";
  for (auto [dtype, rtol] : {std::pair{eqx::float64, 1e-10}, std::pair{eqx::float32, 1e-5}}) {
    INFO(eqx::dtype_name(dtype));
    nn::LSTMCell cell = lstm_from(c, true, dtype);
    eqx::Array xs = fx(c, "xs", dtype), h0 = fx(c, "h0", dtype), c0 = fx(c, "c0", dtype);
    auto [hs, c_final] = run_lstm(cell, xs, {h0, c0});
    check_close(hs, fixture(c, "hs"), rtol, "hs");
    check_close(c_final, fixture(c, "c_final"), rtol, "c_final");
    auto loss = [](const std::tuple<nn::LSTMCell, eqx::Array, eqx::Array, eqx::Array>& p, const eqx::Array& ct,
                   const eqx::Array& ct_c) {
      auto [hs, c] = run_lstm(std::get<0>(p), std::get<1>(p), {std::get<2>(p), std::get<3>(p)});
      return eqx::sum(hs * ct) + eqx::sum(c * ct_c);
    };
    auto [g, gxs, gh0, gc0] = eqx::filter_grad(loss)(std::tuple{cell, xs, h0, c0}, fx(c, "ct", dtype), fx(c, "ct_c", dtype));
    check_close(gxs, fixture(c, "grad_xs"), rtol, "grad_xs");
    check_close(gh0, fixture(c, "grad_h0"), rtol, "grad_h0");
    check_close(gc0, fixture(c, "grad_c0"), rtol, "grad_c0");
    check_param_grads(g, c, true, rtol);
  }
}

TEST_CASE("nn::GRUCell / LSTMCell: Equinox's initialisation U(-sqrt(1/h), sqrt(1/h)) for every parameter", "[nn]") {
  auto gru = nn::GRUCell::init(48, 64, eqx::random::key(5));
  CHECK(gru.weight_ih.shape() == eqx::Shape{192, 48});
  CHECK(gru.weight_hh.shape() == eqx::Shape{192, 64});
  CHECK(gru.bias.shape() == eqx::Shape{192});
  CHECK(gru.bias_n.shape() == eqx::Shape{64});
  CHECK(gru.weight_ih.dtype() == eqx::float32);
  for (const eqx::Array& p : {gru.weight_ih, gru.weight_hh, gru.bias, gru.bias_n}) check_uniform(p, 0.125);

  auto lstm = nn::LSTMCell::init(30, 16, eqx::random::key(6), {.dtype = eqx::float64});
  CHECK(lstm.weight_ih.shape() == eqx::Shape{64, 30});
  CHECK(lstm.weight_hh.shape() == eqx::Shape{64, 16});
  CHECK(lstm.bias.shape() == eqx::Shape{64});
  CHECK(lstm.bias.dtype() == eqx::float64);
  for (const eqx::Array& p : {lstm.weight_ih, lstm.weight_hh}) check_uniform(p, 0.25);
  CHECK(eqx::max(eqx::abs(lstm.bias)).item<double>() < 0.25);

  // Every parameter has its own key (Equinox splits the key 4 and 3 ways).
  CHECK_FALSE(eqx::tree_equal(eqx::slice(gru.bias, 0, 0, 64), gru.bias_n));
  CHECK(eqx::tree_equal(nn::GRUCell::init(3, 2, eqx::random::key(1)), nn::GRUCell::init(3, 2, eqx::random::key(1))));
  CHECK_FALSE(eqx::tree_equal(nn::LSTMCell::init(3, 2, eqx::random::key(1)), nn::LSTMCell::init(3, 2, eqx::random::key(2))));
  auto plain = nn::GRUCell::init(3, 2, eqx::random::key(1), {.use_bias = false});
  CHECK_FALSE(plain.bias.has_value());
  CHECK_FALSE(plain.bias_n.has_value());
  CHECK_FALSE(nn::LSTMCell::init(3, 2, eqx::random::key(1), {.use_bias = false}).bias.has_value());
}

TEST_CASE("nn::GRUCell / LSTMCell under filter_vmap and filter_jit", "[nn]") {
  auto gru = nn::GRUCell::init(3, 4, eqx::random::key(2));
  auto lstm = nn::LSTMCell::init(3, 4, eqx::random::key(3));
  eqx::Array xs = eqx::random::normal(eqx::random::key(4), {5, 3}), hs = eqx::random::normal(eqx::random::key(5), {5, 4});
  eqx::Array cs = eqx::random::normal(eqx::random::key(6), {5, 4});
  auto row = [](const eqx::Array& a, int i) { return eqx::take(a, eqx::array(i), 0); };

  std::vector<eqx::Array> gru_loop, lstm_h, lstm_c;
  for (int i = 0; i < 5; ++i) {
    gru_loop.push_back(gru(row(xs, i), row(hs, i)));
    auto [h, c] = lstm(row(xs, i), std::pair{row(hs, i), row(cs, i)});
    lstm_h.push_back(h);
    lstm_c.push_back(c);
  }
  check_close(eqx::filter_vmap(gru)(xs, hs), eqx::stack(gru_loop), 1e-6, "vmap(gru)");
  auto jitted_gru = eqx::filter_jit([](const nn::GRUCell& cell, const eqx::Array& xs, const eqx::Array& hs) {
    return eqx::filter_vmap(cell)(xs, hs);
  });
  check_close(jitted_gru(gru, xs, hs), eqx::stack(gru_loop), 1e-6, "jit(vmap(gru))");

  auto jitted_lstm = eqx::filter_jit([](const nn::LSTMCell& cell, const eqx::Array& xs, const std::pair<eqx::Array, eqx::Array>& s) {
    return eqx::filter_vmap(cell)(xs, s);
  });
  auto [bh, bc] = jitted_lstm(lstm, xs, std::pair{hs, cs});
  check_close(bh, eqx::stack(lstm_h), 1e-6, "jit(vmap(lstm)).h");
  check_close(bc, eqx::stack(lstm_c), 1e-6, "jit(vmap(lstm)).c");

  // A batch of sequences: vmap over a scan, against one sequence at a time.
  eqx::Array seqs = eqx::random::normal(eqx::random::key(7), {2, 6, 3});
  auto batched = eqx::filter_vmap([&](const eqx::Array& s, const eqx::Array& h0) { return run_gru(gru, s, h0); })(
      seqs, eqx::zeros({2, 4}));
  check_close(eqx::take(batched, eqx::array(1), 0), run_gru(gru, row(seqs, 1), eqx::zeros({4})), 1e-6, "vmap(scan)");
}

TEST_CASE("nn::GRUCell / LSTMCell: printing and Equinox's leaf order", "[nn]") {
  auto gru = nn::GRUCell::init(4, 3, eqx::random::key(0));
  CHECK(fmt::format("{}", gru) ==
        "GRUCell(\n  weight_ih=f32[9,4],\n  weight_hh=f32[9,3],\n  bias=f32[9],\n  bias_n=f32[3],\n  input_size=4,\n"
        "  hidden_size=3,\n  use_bias=True\n)");
  CHECK(fmt::format("{}", nn::LSTMCell::init(2, 5, eqx::random::key(0), {.use_bias = false})) ==
        "LSTMCell(\n  weight_ih=f32[20,2],\n  weight_hh=f32[20,5],\n  bias=None,\n  input_size=2,\n  hidden_size=5,\n"
        "  use_bias=False\n)");

  // Equinox writes weight_ih, weight_hh, bias, bias_n.
  std::stringstream file;
  eqx::tree_serialise_leaves(file, gru);
  std::stringstream copy(file.str());
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{9, 4});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{9, 3});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{9});
  CHECK(eqx::read_npy(copy).shape() == eqx::Shape{3});
  CHECK(copy.peek() == std::char_traits<char>::eof());
  auto loaded = eqx::tree_deserialise_leaves(file, nn::GRUCell::init(4, 3, eqx::random::key(9)));
  CHECK(eqx::tree_equal(loaded, gru));

  auto lstm = nn::LSTMCell::init(2, 3, eqx::random::key(1));
  std::stringstream lfile;
  eqx::tree_serialise_leaves(lfile, lstm);
  std::stringstream lcopy(lfile.str());
  CHECK(eqx::read_npy(lcopy).shape() == eqx::Shape{12, 2});
  CHECK(eqx::read_npy(lcopy).shape() == eqx::Shape{12, 3});
  CHECK(eqx::read_npy(lcopy).shape() == eqx::Shape{12});
  CHECK(eqx::tree_equal(eqx::tree_deserialise_leaves(lfile, nn::LSTMCell::init(2, 3, eqx::random::key(2))), lstm));
}

TEST_CASE("nn::GRUCell / LSTMCell misuse: wrong hidden shape, a batch, bad sizes and dtype", "[nn]") {
  auto gru = nn::GRUCell::init(4, 3, eqx::random::key(0));
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { gru(eqx::zeros({4}), eqx::zeros({4})); }) ==
        "eqx::nn::GRUCell: expected the hidden state to have shape [3] but got [4]");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { gru(eqx::zeros({8, 4}), eqx::zeros({8, 3})); }) ==
        "eqx::nn::GRUCell: expected the input to have shape [4] but got [8,4]; layers act on one example: call it on "
        "one example and batch with eqx::filter_vmap(layer)(xs)");
  auto lstm = nn::LSTMCell::init(4, 3, eqx::random::key(0));
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { lstm(eqx::zeros({4}), std::pair{eqx::zeros({3}), eqx::zeros({2})}); }) ==
        "eqx::nn::LSTMCell: expected the cell state c to have shape [3] but got [2]");
  CHECK(eqx_test::message_of<eqx::ShapeError>([&] { lstm(eqx::zeros({4}), std::pair{eqx::zeros({1, 3}), eqx::zeros({3})}); }) ==
        "eqx::nn::LSTMCell: expected the hidden state h to have shape [3] but got [1,3]; layers act on one example: "
        "call it on one example and batch with eqx::filter_vmap(layer)(xs)");
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { nn::GRUCell::init(4, 0, eqx::random::key(0)); }) ==
        "eqx::nn::GRUCell: expected input_size >= 0 and hidden_size > 0 but got 4 and 0; give positive sizes");
  CHECK(eqx_test::message_of<eqx::DTypeError>([&] { nn::LSTMCell::init(4, 3, eqx::random::key(0), {.dtype = eqx::int32}); }) ==
        "eqx::nn::LSTMCell: dtype int32 is not a floating dtype; parameters are float32 (the default) or float64");
}

}  // namespace nn_rnn_test
