#pragma once
// Convolutions (Equinox's eqx.nn.Conv, Conv1d/2d/3d, ConvTranspose and
// ConvTranspose1d/2d/3d).
//
// A Conv slides a kernel over the spatial axes of ONE example x [C_in, *spatial]:
//   y[o] = bias[o] + sum_{i in o's group, k} weight[o, i, k] * x_padded[i, stride * p + dilation * k]
// which is eqx::conv on x[None]. Its parameters are Equinox's, in Equinox's
// order: weight [C_out, C_in/groups, *kernel] and bias [C_out, 1, ..., 1],
// both uniform in +-1/sqrt((C_in/groups) * prod(kernel)), from two keys split
// from `key` as Equinox does; so a .eqx file of an Equinox Conv loads here.
//
// Padding is an int, one int per dimension, one (lo, hi) pair per dimension,
// or nn::same / nn::same_lower / nn::valid (lax's SAME puts the odd cell on
// the high side, SAME_LOWER on the low side). padding_mode zeros pads with 0
// inside the conv; reflect / replicate / circular pad x first (NumPy's
// reflect / edge / wrap, any width) and then run a VALID conv.
//
// A ConvTranspose is the transpose of the Conv with the same stride, padding
// and dilation ("the opposite direction": from a conv's output shape back to
// its input shape). As in Equinox it is a conv of the input spread out by
// `stride` (lhs_dilation) with the transposed padding
// (dilation*(k-1) - lo, dilation*(k-1) - hi + output_padding); the weight is
// used as stored, [C_out, C_in/groups, *kernel].
//
//   auto conv = eqx::nn::Conv2d::init(3, 16, 3, key, {.stride = 2, .padding = eqx::nn::same});
//   eqx::Array y = conv(x);                           // f32[3,32,32] -> f32[16,16,16]
//   auto up = eqx::nn::ConvTranspose2d::init(16, 3, 3, key, {.stride = 2, .padding = 1, .output_padding = 1});
//   eqx::Array ys = eqx::filter_vmap(conv)(xs);       // a batch f32[B,3,32,32]
//
// Conv1d/2d/3d are their own types (so that they print as Equinox prints
// them, "Conv2d(...)"), with the same fields as Conv and one shared
// implementation in nn::detail.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "eqx/core/array.hpp"
#include "eqx/nn/common.hpp"
#include "eqx/ops/conv.hpp"
#include "eqx/ops/elementwise.hpp"
#include "eqx/ops/indexing.hpp"
#include "eqx/ops/shape.hpp"
#include "eqx/random.hpp"
#include "eqx/tree/node.hpp"

namespace eqx::nn {

/// A tuple of ints in a static field (Equinox's `tuple[int, ...]`: kernel
/// sizes, strides, ...): a std::vector that prints as a Python tuple, "(3, 3)".
/// Usage: `conv.stride->at(0)`
struct IntTuple : std::vector<std::int64_t> {
  using std::vector<std::int64_t>::vector;
  IntTuple(std::vector<std::int64_t> v) : std::vector<std::int64_t>(std::move(v)) {}  // NOLINT: a tuple is its values
  friend bool operator==(const IntTuple& a, const IntTuple& b) {
    return static_cast<const std::vector<std::int64_t>&>(a) == static_cast<const std::vector<std::int64_t>&>(b);
  }
};

/// A layer's padding: one int for every side, one int per spatial dimension
/// (both sides), one (lo, hi) pair per dimension, or nn::same, nn::same_lower,
/// nn::valid. Layers store it resolved: pairs, or the kind (printed as
/// Equinox prints it: ((1, 1), (0, 0)) or 'SAME').
/// Usage: `{.padding = 1}`, `{.padding = {1, 2}}`, `{.padding = {{1, 2}, {0, 1}}}`, `{.padding = eqx::nn::same}`
class Padding {
 public:
  using Pair = std::pair<std::int64_t, std::int64_t>;
  /// The padding strings of Equinox ("SAME", "SAME_LOWER", "VALID") or explicit pairs.
  enum class Kind { pairs, same, same_lower, valid };

  /// No padding (0).
  Padding() : Padding(0) {}
  Padding(std::int64_t p) : ints_{p}, broadcast_(true) {}  // NOLINT: an int is the common case
  Padding(int p) : Padding(static_cast<std::int64_t>(p)) {}  // NOLINT
  Padding(std::initializer_list<std::int64_t> per_dim) : ints_(per_dim) {}
  Padding(std::initializer_list<Pair> pairs) : pairs_(pairs), from_pairs_(true) {}
  Padding(std::vector<Pair> pairs) : pairs_(std::move(pairs)), from_pairs_(true) {}  // NOLINT
  Padding(Kind kind) : kind_(kind) {}                                                 // NOLINT: nn::same etc.

  Kind kind() const { return kind_; }
  /// The (lo, hi) pairs of a resolved explicit padding.
  const std::vector<Pair>& pairs() const { return pairs_; }

  /// The padding for `dims` spatial dimensions as pairs (or the kind);
  /// throws naming `layer` if the number of entries is not `dims`.
  Padding resolve(std::size_t dims, std::string_view layer) const {
    if (kind_ != Kind::pairs) return *this;
    std::vector<Pair> out;
    if (from_pairs_) {
      out = pairs_;
    } else {
      for (std::int64_t p : broadcast_ ? std::vector<std::int64_t>(dims, ints_[0]) : ints_) out.emplace_back(p, p);
    }
    if (out.size() != dims)
      throw ValueError("eqx::nn::" + std::string(layer) + ": expected padding for " + std::to_string(dims) +
                       " spatial dimensions but got " + std::to_string(out.size()) +
                       " entries; give one int, one int per dimension, or one (lo, hi) pair per dimension");
    return Padding(std::move(out));
  }

  /// The same padding for eqx::conv (pairs, or "SAME" / "SAME_LOWER" / "VALID").
  eqx::Padding for_conv() const {
    switch (kind_) {
      case Kind::same: return "SAME";
      case Kind::same_lower: return "SAME_LOWER";
      case Kind::valid: return "VALID";
      default: return eqx::Padding(pairs_);
    }
  }

  friend bool operator==(const Padding& a, const Padding& b) {
    return a.kind_ == b.kind_ && a.pairs_ == b.pairs_ && a.ints_ == b.ints_ && a.broadcast_ == b.broadcast_ &&
           a.from_pairs_ == b.from_pairs_;
  }

 private:
  Kind kind_ = Kind::pairs;
  std::vector<std::int64_t> ints_;
  std::vector<Pair> pairs_;
  bool broadcast_ = false;
  bool from_pairs_ = false;
};

/// Padding so that the output has ceil(input / stride) cells, the odd
/// cell on the high side (Equinox's "SAME"). Usage: `{.padding = eqx::nn::same}`
inline constexpr Padding::Kind same = Padding::Kind::same;
/// As nn::same with the odd cell on the low side ("SAME_LOWER").
inline constexpr Padding::Kind same_lower = Padding::Kind::same_lower;
/// No padding ("VALID").
inline constexpr Padding::Kind valid = Padding::Kind::valid;

/// What a Conv pads with: zeros, or the input's own cells (NumPy's
/// reflect `1234 -> 32123432`, edge `11123444`, wrap `34123412`).
/// Usage: `{.padding = 2, .padding_mode = eqx::nn::PaddingMode::reflect}`
class PaddingMode {
 public:
  static const PaddingMode zeros, reflect, replicate, circular;
  /// zeros.
  constexpr PaddingMode() = default;
  /// Equinox's name: "ZEROS", "REFLECT", "REPLICATE" or "CIRCULAR".
  constexpr std::string_view name() const { return name_; }
  friend constexpr bool operator==(const PaddingMode& a, const PaddingMode& b) { return a.name_ == b.name_; }

 private:
  constexpr explicit PaddingMode(std::string_view name) : name_(name) {}
  std::string_view name_ = "ZEROS";
};
inline constexpr PaddingMode PaddingMode::zeros{"ZEROS"};
inline constexpr PaddingMode PaddingMode::reflect{"REFLECT"};
inline constexpr PaddingMode PaddingMode::replicate{"REPLICATE"};
inline constexpr PaddingMode PaddingMode::circular{"CIRCULAR"};

/// Conv's keyword arguments (Equinox's, in Equinox's order).
struct ConvOptions {
  Sizes stride = 1;
  Padding padding = 0;
  Sizes dilation = 1;
  std::int64_t groups = 1;
  bool use_bias = true;
  PaddingMode padding_mode = PaddingMode::zeros;
  DType dtype = float32;
};

/// ConvTranspose's keyword arguments (Equinox's, in Equinox's order).
struct ConvTransposeOptions {
  Sizes stride = 1;
  Padding padding = 0;
  Sizes output_padding = 0;
  Sizes dilation = 1;
  std::int64_t groups = 1;
  bool use_bias = true;
  PaddingMode padding_mode = PaddingMode::zeros;
  DType dtype = float32;
};

namespace detail {

/// "(3, 3)" or "(3,)", as Python prints a tuple.
inline std::string tuple_str(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

/// The expected axes of one example, e.g. "[C_in, H, W]".
inline std::string spatial_layout(std::string_view channels, std::int64_t dims) {
  static const char* names[][3] = {{"W", "", ""}, {"H", "W", ""}, {"D", "H", "W"}};
  std::string s = "[" + std::string(channels);
  for (std::int64_t i = 0; i < dims; ++i) s += ", " + (dims <= 3 ? std::string(names[dims - 1][i]) : "d" + std::to_string(i + 1));
  return s + "]";
}

/// x padded along its spatial axes (all but axis 0) by `pads` with `mode`,
/// as numpy.pad's reflect / edge / wrap (any width, even wider than the
/// axis): each axis is gathered from the source index of every padded cell.
inline Array pad_with_mode(const Array& x, const std::vector<Padding::Pair>& pads, PaddingMode mode) {
  Array y = x;
  for (std::size_t i = 0; i < pads.size(); ++i) {
    const auto [lo, hi] = pads[i];
    if (lo == 0 && hi == 0) continue;
    const std::int64_t n = x.shape()[i + 1];
    std::vector<std::int32_t> idx;
    for (std::int64_t j = -lo; j < n + hi; ++j) {
      std::int64_t src = 0;
      if (mode == PaddingMode::replicate) {
        src = std::clamp<std::int64_t>(j, 0, n - 1);
      } else if (mode == PaddingMode::circular) {
        src = ((j % n) + n) % n;
      } else if (n > 1) {  // reflect: the periodic extension of 0 1 .. n-1 .. 1
        const std::int64_t period = 2 * (n - 1);
        src = ((j % period) + period) % period;
        if (src >= n) src = period - src;
      }
      idx.push_back(static_cast<std::int32_t>(src));
    }
    y = take(y, array(idx), static_cast<std::int64_t>(i + 1));
  }
  return y;
}

/// What Conv and ConvTranspose share after parsing their arguments.
struct ConvParts {
  Array weight, bias;
  IntTuple kernel, stride, dilation;
  Padding padding;
};

inline ConvParts conv_parts(std::string_view layer, std::int64_t dims, std::int64_t in, std::int64_t out,
                            const Sizes& kernel_size, const Sizes& stride, const Padding& padding,
                            const Sizes& dilation, std::int64_t groups, bool use_bias, DType dtype,
                            const random::Key& key) {
  check_param_dtype(dtype, layer);
  const std::string name(layer);
  if (groups < 1 || in % groups != 0 || out % groups != 0)
    throw ValueError("eqx::nn::" + name + ": expected groups >= 1 dividing in_channels and out_channels but got groups " +
                     std::to_string(groups) + " for in_channels " + std::to_string(in) + " and out_channels " +
                     std::to_string(out) + "; choose groups that divides both");
  ConvParts p{Array{}, Array{}, kernel_size.expand(dims, layer, "kernel_size"), stride.expand(dims, layer, "stride"),
              dilation.expand(dims, layer, "dilation"), padding.resolve(dims, layer)};
  const std::int64_t fan_in = (in / groups) * [&] {
    std::int64_t n = 1;
    for (auto k : p.kernel) n *= k;
    return n;
  }();
  const double lim = 1.0 / std::sqrt(static_cast<double>(fan_in));
  auto keys = random::split_keys(key, 2);
  std::vector<std::int64_t> wshape{out, in / groups}, bshape{out};
  wshape.insert(wshape.end(), p.kernel.begin(), p.kernel.end());
  bshape.resize(1 + dims, 1);
  p.weight = default_init(keys[0], Shape(wshape.begin(), wshape.end()), dtype, lim);
  if (use_bias) p.bias = default_init(keys[1], Shape(bshape.begin(), bshape.end()), dtype, lim);
  return p;
}

/// Layer L built from its parts (every Conv type has Conv's fields).
template <class L>
L make_conv(std::int64_t dims, std::int64_t in, std::int64_t out, ConvParts p, std::int64_t groups, bool use_bias,
            PaddingMode mode) {
  return L{{dims},       std::move(p.weight), std::move(p.bias), {in},     {out},     {std::move(p.kernel)},
           {std::move(p.stride)}, {std::move(p.padding)},       {std::move(p.dilation)}, {groups}, {use_bias}, {mode}};
}

/// Checks one example [C_in, *spatial] for a conv layer.
template <class L>
void check_conv_input(const L& l, const Array& x) {
  check_rank(L::layer_name, x, static_cast<std::size_t>(*l.num_spatial_dims) + 1,
             spatial_layout("C_in", *l.num_spatial_dims));
  check_dim(L::layer_name, x, 0, *l.in_channels, "channels");
}

/// Conv's forward pass on one example.
template <class L>
Array conv_call(const L& l, const Array& x) {
  check_conv_input(l, x);
  Array in = x;
  eqx::Padding pad = l.padding->for_conv();
  if (!(*l.padding_mode == PaddingMode::zeros)) {
    std::vector<std::int64_t> sizes, window;
    for (std::size_t i = 0; i < l.kernel_size->size(); ++i) {
      sizes.push_back(x.shape()[i + 1]);
      window.push_back(l.dilation->at(i) * (l.kernel_size->at(i) - 1) + 1);
    }
    const std::vector<std::int64_t> flat = pad.resolve("conv", sizes, window, *l.stride, true);
    std::vector<Padding::Pair> pairs;
    for (std::size_t i = 0; i < sizes.size(); ++i) pairs.emplace_back(flat[2 * i], flat[2 * i + 1]);
    in = pad_with_mode(x, pairs, *l.padding_mode);
    pad = "VALID";
  }
  Array y = squeeze(conv(expand_dims(in, 0), l.weight, *l.stride, pad, {}, *l.dilation, *l.groups), {0});
  return *l.use_bias ? y + l.bias : y;
}

/// ConvTranspose's argument checks (Equinox's).
inline void check_transpose_args(std::string_view layer, const IntTuple& stride, const IntTuple& output_padding,
                                 const Padding& padding, PaddingMode mode) {
  const std::string name(layer);
  for (std::size_t i = 0; i < stride.size(); ++i)
    if (output_padding[i] >= stride[i] || output_padding[i] < 0)
      throw ValueError("eqx::nn::" + name + ": expected 0 <= output_padding < stride in every dimension but got "
                       "output_padding " + tuple_str(output_padding) + " and stride " + tuple_str(stride) +
                       "; output_padding picks one of the stride input sizes a strided conv maps to one output size");
  if (mode == PaddingMode::reflect || mode == PaddingMode::replicate)
    throw ValueError("eqx::nn::" + name + ": expected padding_mode ZEROS or CIRCULAR but got " +
                     std::string(mode.name()) + "; Equinox's ConvTranspose does not implement REFLECT or REPLICATE");
  if (mode == PaddingMode::circular) {
    bool zero = true;
    for (auto a : output_padding) zero = zero && a == 0;
    if (!zero || (padding.kind() != Padding::Kind::same && padding.kind() != Padding::Kind::same_lower))
      throw ValueError("eqx::nn::" + name +
                       ": expected padding nn::same or nn::same_lower and output_padding 0 with padding_mode CIRCULAR"
                       " but got output_padding " + tuple_str(output_padding) +
                       (padding.kind() == Padding::Kind::same || padding.kind() == Padding::Kind::same_lower
                            ? std::string()
                            : std::string(" and another padding")) +
                       "; Equinox implements CIRCULAR for those only");
  }
}

/// ConvTranspose's forward pass on one example: a conv of x spread out by
/// `stride`, with the padding of relationship 14 of arXiv:1603.07285.
template <class L>
Array conv_transpose_call(const L& l, const Array& x) {
  check_conv_input(l, x);
  const std::size_t n = l.kernel_size->size();
  const Padding& padding = *l.padding;
  std::vector<Padding::Pair> pads;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t k = l.kernel_size->at(i), s = l.stride->at(i), d = l.dilation->at(i);
    std::int64_t a = l.output_padding->at(i), lo = 0, hi = 0;
    if (padding.kind() == Padding::Kind::same || padding.kind() == Padding::Kind::same_lower) {
      std::int64_t total = d * (k - 1) - s + a + 1;
      if (total < 0) a = -total, total = 0;
      lo = (total + (padding.kind() == Padding::Kind::same_lower ? 1 : 0)) / 2;
      hi = total - lo;
    } else if (padding.kind() == Padding::Kind::pairs) {
      lo = padding.pairs()[i].first, hi = padding.pairs()[i].second;
    }
    pads.emplace_back(d * (k - 1) - lo, d * (k - 1) - hi + a);
  }
  Array in = x;
  if (*l.padding_mode == PaddingMode::circular) {  // wrap whole input cells; the rest is zero padding
    std::vector<Padding::Pair> wrap;
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t s = l.stride->at(i);
      wrap.emplace_back(pads[i].first / s, pads[i].second / s);
      pads[i] = {pads[i].first % s, pads[i].second % s};
    }
    in = pad_with_mode(x, wrap, PaddingMode::circular);
  }
  Array y = squeeze(conv(expand_dims(in, 0), l.weight, std::vector<std::int64_t>(n, 1), eqx::Padding(pads),
                         *l.stride, *l.dilation, *l.groups),
                    {0});
  return *l.use_bias ? y + l.bias : y;
}

template <class L>
L make_conv_transpose(std::int64_t dims, std::int64_t in, std::int64_t out, const Sizes& kernel_size,
                      const random::Key& key, const ConvTransposeOptions& o) {
  ConvParts p = conv_parts(L::layer_name, dims, in, out, kernel_size, o.stride, o.padding, o.dilation, o.groups,
                           o.use_bias, o.dtype, key);
  IntTuple output_padding = o.output_padding.expand(static_cast<std::size_t>(dims), L::layer_name, "output_padding");
  check_transpose_args(L::layer_name, p.stride, output_padding, p.padding, o.padding_mode);
  return L{{dims},  std::move(p.weight),          std::move(p.bias),        {in},
           {out},   {std::move(p.kernel)},         {std::move(p.stride)},    {std::move(p.padding)},
           {std::move(output_padding)},            {std::move(p.dilation)},  {o.groups},
           {o.use_bias}, {o.padding_mode}};
}

template <class L>
L make_conv_layer(std::int64_t dims, std::int64_t in, std::int64_t out, const Sizes& kernel_size,
                  const random::Key& key, const ConvOptions& o) {
  return make_conv<L>(dims, in, out,
                      conv_parts(L::layer_name, dims, in, out, kernel_size, o.stride, o.padding, o.dilation, o.groups,
                                 o.use_bias, o.dtype, key),
                      o.groups, o.use_bias, o.padding_mode);
}

}  // namespace detail

/// N-dimensional convolution (eqx.nn.Conv) on one example [C_in, *spatial].
struct Conv {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, *kernel_size]
  Array bias;    ///< [C_out, 1, ..., 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvOptions;
  static constexpr std::string_view layer_name = "Conv";

  /// A Conv over `num_spatial_dims` axes, parameters uniform in
  /// +-1/sqrt((in/groups) * prod(kernel_size)).
  /// Usage: `eqx::nn::Conv::init(2, 3, 8, {3, 3}, key, {.padding = eqx::nn::same})`
  static Conv init(std::int64_t num_spatial_dims, std::int64_t in_channels, std::int64_t out_channels,
                   Sizes kernel_size, const random::Key& key, Options opts = {}) {
    return detail::make_conv_layer<Conv>(num_spatial_dims, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, *spatial] -> [C_out, *out_spatial]. Usage: `conv(x)`
  Array operator()(const Array& x) const { return detail::conv_call(*this, x); }
};

/// 1-d convolution (eqx.nn.Conv1d): Conv with num_spatial_dims = 1, x [C_in, W].
struct Conv1d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, k]
  Array bias;    ///< [C_out, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvOptions;
  static constexpr std::string_view layer_name = "Conv1d";

  /// Usage: `eqx::nn::Conv1d::init(4, 8, 5, key, {.padding = 2})`
  static Conv1d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size, const random::Key& key,
                     Options opts = {}) {
    return detail::make_conv_layer<Conv1d>(1, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, W] -> [C_out, W_out]. Usage: `conv(x)`
  Array operator()(const Array& x) const { return detail::conv_call(*this, x); }
};

/// 2-d convolution (eqx.nn.Conv2d): Conv with num_spatial_dims = 2, x [C_in, H, W].
struct Conv2d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, kH, kW]
  Array bias;    ///< [C_out, 1, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvOptions;
  static constexpr std::string_view layer_name = "Conv2d";

  /// Usage: `eqx::nn::Conv2d::init(3, 16, 3, key, {.stride = 2, .padding = 1})`
  static Conv2d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size, const random::Key& key,
                     Options opts = {}) {
    return detail::make_conv_layer<Conv2d>(2, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, H, W] -> [C_out, H_out, W_out]. Usage: `conv(x)`
  Array operator()(const Array& x) const { return detail::conv_call(*this, x); }
};

/// 3-d convolution (eqx.nn.Conv3d): Conv with num_spatial_dims = 3, x [C_in, D, H, W].
struct Conv3d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, kD, kH, kW]
  Array bias;    ///< [C_out, 1, 1, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvOptions;
  static constexpr std::string_view layer_name = "Conv3d";

  /// Usage: `eqx::nn::Conv3d::init(1, 4, {3, 3, 3}, key)`
  static Conv3d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size, const random::Key& key,
                     Options opts = {}) {
    return detail::make_conv_layer<Conv3d>(3, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, D, H, W] -> [C_out, D_out, H_out, W_out]. Usage: `conv(x)`
  Array operator()(const Array& x) const { return detail::conv_call(*this, x); }
};

/// N-dimensional transposed convolution (eqx.nn.ConvTranspose): the
/// transpose of the Conv with the same stride, padding and dilation.
struct ConvTranspose {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, *kernel_size]
  Array bias;    ///< [C_out, 1, ..., 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> output_padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvTransposeOptions;
  static constexpr std::string_view layer_name = "ConvTranspose";

  /// A ConvTranspose; `stride`, `padding` and `dilation` are those of the
  /// equivalent forward Conv, `output_padding` (< stride) picks its input size.
  /// Usage: `eqx::nn::ConvTranspose::init(2, 16, 3, 4, key, {.stride = 2, .padding = 1, .output_padding = 1})`
  static ConvTranspose init(std::int64_t num_spatial_dims, std::int64_t in_channels, std::int64_t out_channels,
                            Sizes kernel_size, const random::Key& key, Options opts = {}) {
    return detail::make_conv_transpose<ConvTranspose>(num_spatial_dims, in_channels, out_channels, kernel_size, key,
                                                      opts);
  }
  /// x [C_in, *spatial] -> [C_out, *out_spatial]. Usage: `up(x)`
  Array operator()(const Array& x) const { return detail::conv_transpose_call(*this, x); }
};

/// 1-d transposed convolution (eqx.nn.ConvTranspose1d), x [C_in, W].
struct ConvTranspose1d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, k]
  Array bias;    ///< [C_out, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> output_padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvTransposeOptions;
  static constexpr std::string_view layer_name = "ConvTranspose1d";

  /// Usage: `eqx::nn::ConvTranspose1d::init(8, 4, 3, key, {.stride = 2})`
  static ConvTranspose1d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size,
                              const random::Key& key, Options opts = {}) {
    return detail::make_conv_transpose<ConvTranspose1d>(1, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, W] -> [C_out, W_out]. Usage: `up(x)`
  Array operator()(const Array& x) const { return detail::conv_transpose_call(*this, x); }
};

/// 2-d transposed convolution (eqx.nn.ConvTranspose2d), x [C_in, H, W].
struct ConvTranspose2d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, kH, kW]
  Array bias;    ///< [C_out, 1, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> output_padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvTransposeOptions;
  static constexpr std::string_view layer_name = "ConvTranspose2d";

  /// Usage: `eqx::nn::ConvTranspose2d::init(16, 3, 4, key, {.stride = 2, .padding = eqx::nn::same})`
  static ConvTranspose2d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size,
                              const random::Key& key, Options opts = {}) {
    return detail::make_conv_transpose<ConvTranspose2d>(2, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, H, W] -> [C_out, H_out, W_out]. Usage: `up(x)`
  Array operator()(const Array& x) const { return detail::conv_transpose_call(*this, x); }
};

/// 3-d transposed convolution (eqx.nn.ConvTranspose3d), x [C_in, D, H, W].
struct ConvTranspose3d {
  Static<std::int64_t> num_spatial_dims;
  Array weight;  ///< [C_out, C_in/groups, kD, kH, kW]
  Array bias;    ///< [C_out, 1, 1, 1]; empty when use_bias is false
  Static<std::int64_t> in_channels;
  Static<std::int64_t> out_channels;
  Static<IntTuple> kernel_size;
  Static<IntTuple> stride;
  Static<Padding> padding;
  Static<IntTuple> output_padding;
  Static<IntTuple> dilation;
  Static<std::int64_t> groups;
  Static<bool> use_bias;
  Static<PaddingMode> padding_mode;

  using Options = ConvTransposeOptions;
  static constexpr std::string_view layer_name = "ConvTranspose3d";

  /// Usage: `eqx::nn::ConvTranspose3d::init(4, 1, 2, key, {.stride = 2})`
  static ConvTranspose3d init(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size,
                              const random::Key& key, Options opts = {}) {
    return detail::make_conv_transpose<ConvTranspose3d>(3, in_channels, out_channels, kernel_size, key, opts);
  }
  /// x [C_in, D, H, W] -> [C_out, D_out, H_out, W_out]. Usage: `up(x)`
  Array operator()(const Array& x) const { return detail::conv_transpose_call(*this, x); }
};

}  // namespace eqx::nn

/// Prints as a Python tuple: `(3, 3)`, `(3,)`.
template <>
struct fmt::formatter<eqx::nn::IntTuple> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::IntTuple& t, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(eqx::nn::detail::tuple_str(t), ctx);
  }
};

/// Prints as Equinox prints a layer's padding: `((1, 1), (0, 2))` or `'SAME'`.
template <>
struct fmt::formatter<eqx::nn::Padding> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::Padding& p, fmt::format_context& ctx) const {
    using K = eqx::nn::Padding::Kind;
    switch (p.kind()) {
      case K::same: return fmt::formatter<std::string_view>::format("'SAME'", ctx);
      case K::same_lower: return fmt::formatter<std::string_view>::format("'SAME_LOWER'", ctx);
      case K::valid: return fmt::formatter<std::string_view>::format("'VALID'", ctx);
      default: break;
    }
    std::string s = "(";
    for (std::size_t i = 0; i < p.pairs().size(); ++i)
      s += (i ? ", (" : "(") + std::to_string(p.pairs()[i].first) + ", " + std::to_string(p.pairs()[i].second) + ")";
    s += p.pairs().size() == 1 ? ",)" : ")";
    return fmt::formatter<std::string_view>::format(s, ctx);
  }
};

/// Prints as Equinox's string: `'ZEROS'`, `'REFLECT'`, ...
template <>
struct fmt::formatter<eqx::nn::PaddingMode> : fmt::formatter<std::string_view> {
  auto format(const eqx::nn::PaddingMode& m, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("'" + std::string(m.name()) + "'", ctx);
  }
};
