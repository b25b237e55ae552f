#pragma once
// Safetensors files (Hugging Face's format, read by PyTorch, JAX, MLX, ...)
// for eqx models and for plain dictionaries of Arrays.
//
// The format: 8 bytes, a little-endian u64 N; N bytes of UTF-8 JSON, an
// object mapping each tensor's name to {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
// string -> string; then the data buffer, which the tensors' [begin, end)
// byte ranges (relative to the buffer's start) cover exactly, without holes
// or overlaps. Data is little-endian and row-major. Files are written as the
// reference writer (huggingface/safetensors) writes them: compact JSON with
// "__metadata__" first, then the tensors sorted by dtype (F64, F32, U32, I32,
// BOOL: largest alignment first) and then by name, their data in that order,
// and the JSON padded with spaces to a multiple of 8 bytes so that every
// tensor's data is aligned. Reading checks what the reference reader checks
// (header at most 100 MB, every entry complete and of the right JSON type,
// byte counts equal to numel * itemsize, offsets contiguous from 0 to the end
// of the file, metadata values strings) and also refuses duplicate names;
// every size is checked against the file before anything is allocated.
//
// Names: save_safetensors / load_safetensors name each non-empty Array leaf
// by its key path in PyTorch's state_dict style, the path's parts joined by
// dots: `.layers[1].weight` is "layers.1.weight", a map entry `['w']` is "w".
// Non-Array leaves (doubles and bools standing for Python scalars, ints,
// strings, eqx::Static fields) are not tensors: they are not written, and a
// loaded model takes them from `like`. SafetensorsOptions::rename maps each
// model name to a file name, on save and on load alike.
//
// PyTorch layouts: Linear (weight [out, in], bias [out]), Embedding,
// LayerNorm/GroupNorm/BatchNorm affine weights and biases, and Conv weights
// [out, in/groups, *kernel] are the same as torch's. Differences:
//   * an eqx::nn Conv bias is [out, 1, ..., 1], torch's is [out]: reshape it;
//   * eqx::nn ConvTranspose keeps the conv-style weight [out, in/groups, *k];
//     torch's ConvTranspose weight is [in, out/groups, *k] with the spatial
//     axes flipped (swap the two channel axes within each group, then flip);
//   * GRUCell: weight_ih [3h, in] and weight_hh [3h, h] (gate rows r, z, n)
//     are torch's; torch has bias_ih, bias_hh [3h] where eqx has bias [3h]
//     and bias_n [h]. torch -> eqx: bias = bias_ih + [bias_hh[0:2h], 0],
//     bias_n = bias_hh[2h:3h]; eqx -> torch: bias_ih = bias,
//     bias_hh = [0 (2h values), bias_n];
//   * LSTMCell: weights as torch (gate rows i, f, g, o); eqx bias = bias_ih +
//     bias_hh; eqx -> torch: bias_ih = bias, bias_hh = 0.
// For such changes use the dictionary API (read_safetensors /
// write_safetensors) and build the model's Arrays by hand. Hugging Face's
// loaders may want metadata {"format": "pt"}: pass it in the options.
//
// Supported dtypes: F32, F64, I32, U32 and BOOL (eqx's). A tensor of another
// safetensors dtype (F16, BF16, I64, U8, ...) is refused when it is read.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <iterator>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/io/npy.hpp"        // eqx::IOError
#include "eqx/io/serialise.hpp"  // detail::write_file_atomically
#include "eqx/tree/walk.hpp"

namespace eqx {

/// Options of save_safetensors / load_safetensors.
/// Usage: `auto prefix = [](std::string_view n) { return "model." + std::string(n); };
///         eqx::save_safetensors("m.safetensors", model, {.rename = prefix});`
struct SafetensorsOptions {
  /// Maps a model name ("layers.1.weight") to the name in the file; identity when empty.
  std::function<std::string(std::string_view)> rename = {};
  /// load_safetensors: a tensor in the file that the model does not have is an error (false: ignore it).
  bool strict = true;
  /// save_safetensors: written as the header's "__metadata__" (omitted when empty).
  std::map<std::string, std::string> metadata = {};
};

/// Everything in a safetensors file: the tensors in file (offset) order and the metadata.
/// Usage: `auto f = eqx::read_safetensors("m.safetensors"); eqx::Array w = f.at("fc.weight");`
struct SafetensorsFile {
  std::vector<std::pair<std::string, Array>> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor named `name`; throws eqx::ValueError naming the file's tensors when there is none.
  /// Usage: `eqx::Array w = eqx::read_safetensors("m.safetensors").at("fc.weight");`
  const Array& at(std::string_view name) const {
    for (const auto& [n, a] : tensors)
      if (n == name) return a;
    std::string names;
    for (const auto& t : tensors) names += (names.empty() ? "'" : ", '") + t.first + "'";
    throw ValueError("eqx::SafetensorsFile::at: no tensor named '" + std::string(name) + "'; the file has " +
                     (names.empty() ? std::string("no tensors") : names));
  }
};

namespace detail {

inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;  // the reference's MAX_HEADER_SIZE
inline constexpr std::size_t kSafetensorsMaxList = 64;               // the longest JSON list read (a rank-64 shape)
inline constexpr std::string_view kSafetensorsEqxDTypes = "F32, F64, I32, U32 and BOOL";

struct SafetensorsDType {
  std::string_view name;
  unsigned bits;
  bool in_eqx;
  DType dtype;
};

/// Every safetensors dtype, in the reference's order (its writer puts larger positions first).
inline constexpr SafetensorsDType kSafetensorsDTypes[] = {
    {"BOOL", 8, true, DType::bool_},  {"F4", 4, false, {}},         {"F6_E2M3", 6, false, {}},
    {"F6_E3M2", 6, false, {}},        {"U8", 8, false, {}},         {"I8", 8, false, {}},
    {"F8_E5M2", 8, false, {}},        {"F8_E4M3", 8, false, {}},    {"F8_E8M0", 8, false, {}},
    {"F8_E4M3FNUZ", 8, false, {}},    {"F8_E5M2FNUZ", 8, false, {}}, {"I16", 16, false, {}},
    {"U16", 16, false, {}},           {"F16", 16, false, {}},       {"BF16", 16, false, {}},
    {"I32", 32, true, DType::int32},  {"U32", 32, true, DType::uint32}, {"F32", 32, true, DType::float32},
    {"C64", 64, false, {}},           {"F64", 64, true, DType::float64}, {"I64", 64, false, {}},
    {"U64", 64, false, {}}};

inline const SafetensorsDType* find_safetensors_dtype(std::string_view name) {
  for (const auto& d : kSafetensorsDTypes)
    if (d.name == name) return &d;
  return nullptr;
}

/// Position of an eqx dtype in kSafetensorsDTypes.
inline std::size_t safetensors_rank(DType d) {
  for (std::size_t i = 0; i < std::size(kSafetensorsDTypes); ++i)
    if (kSafetensorsDTypes[i].in_eqx && kSafetensorsDTypes[i].dtype == d) return i;
  return 0;
}

/// One tensor of a parsed header.
struct SafetensorsEntry {
  std::string name;
  const SafetensorsDType* dtype;
  Shape shape;
  std::uint64_t begin, end;  // relative to the data buffer

  std::string type() const { return std::string(dtype->name) + shape.str(); }
};

/// A parsed, validated header.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in offset order
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;           // 8 + N, from the start of the file
};

/// A short rendering of a JSON value for messages.
inline std::string show_json(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

/// Watches the parse of a header: refuses duplicate keys (nlohmann keeps the
/// last), nesting deeper than a header needs and overlong lists, while parsing.
class SafetensorsJsonGuard {
 public:
  explicit SafetensorsJsonGuard(const std::string& ctx) : ctx_(ctx) {}

  bool operator()(int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        element();
        if (stack_.size() >= 3)
          throw IOError(ctx_ + "the header nests lists or objects more than 3 deep; a safetensors header is "
                               "{name: {\"dtype\": ..., \"shape\": [...], \"data_offsets\": [...]}, ...}");
        stack_.push_back({event == E::object_start, 0, {}});
        break;
      case E::object_end:
      case E::array_end:
        if (!stack_.empty()) stack_.pop_back();
        break;
      case E::key:
        if (!stack_.empty() && !stack_.back().keys.insert(parsed.get<std::string>()).second)
          throw IOError(ctx_ + "the header has the key '" + parsed.get<std::string>() +
                        "' twice in one object; safetensors forbids duplicate names");
        break;
      case E::value: element(); break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object;
    std::size_t count;
    std::set<std::string> keys;
  };
  void element() {
    if (!stack_.empty() && !stack_.back().object && ++stack_.back().count > kSafetensorsMaxList)
      throw IOError(ctx_ + "the header has a list of more than " + std::to_string(kSafetensorsMaxList) +
                    " values (eqx reads shapes of at most " + std::to_string(kSafetensorsMaxList) + " dimensions)");
  }
  std::string ctx_;
  std::vector<Frame> stack_;
};

/// Checks one header entry and returns it (offsets not yet checked against the others).
inline SafetensorsEntry parse_safetensors_entry(const std::string& ctx, const std::string& name,
                                                const nlohmann::json& v) {
  auto fail = [&](const std::string& why) { throw IOError(ctx + "tensor '" + name + "': " + why); };
  if (!v.is_object())
    fail("its entry is " + show_json(v) + ", not an object {\"dtype\": ..., \"shape\": ..., \"data_offsets\": ...}");
  auto field = [&](const char* key) -> const nlohmann::json& {
    auto it = v.find(key);
    if (it == v.end()) fail(std::string("its entry has no \"") + key + "\"");
    return *it;
  };
  const nlohmann::json& dt = field("dtype");
  const nlohmann::json& sh = field("shape");
  const nlohmann::json& off = field("data_offsets");
  if (!dt.is_string()) fail("\"dtype\" is " + show_json(dt) + ", not a string such as \"F32\"");
  const SafetensorsDType* dtype = find_safetensors_dtype(dt.get_ref<const std::string&>());
  if (!dtype)
    fail("unknown dtype " + show_json(dt) + "; safetensors files for eqx hold " + std::string(kSafetensorsEqxDTypes));
  bool shape_ok = sh.is_array();
  for (std::size_t i = 0; shape_ok && i < sh.size(); ++i) shape_ok = sh[i].is_number_unsigned();
  if (!shape_ok) fail("\"shape\" is " + show_json(sh) + ", not a list of non-negative integers");
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    fail("\"data_offsets\" is " + show_json(off) + ", not a pair [begin, end] of non-negative integers");
  const auto begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
  if (end < begin) fail("\"data_offsets\" " + show_json(off) + " end before they begin");
  // numel * bits, refusing overflow (and dimensions an eqx Shape cannot hold).
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t numel = 1;
  bool overflow = false;
  Shape shape;
  for (const auto& d : sh) {
    const auto n = d.get<std::uint64_t>();
    overflow = overflow || n > kMax || (n != 0 && numel > kMax / n);  // as the reference, in order
    if (!overflow) numel *= n;
    shape.push_back(static_cast<std::int64_t>(n));
  }
  if (overflow || numel > kMax / dtype->bits) fail("shape " + show_json(sh) + " has too many elements");
  const std::uint64_t bits = numel * dtype->bits;
  if (bits % 8 != 0) fail(std::string(dtype->name) + " shape " + show_json(sh) + " is not a whole number of bytes");
  if (end - begin != bits / 8)
    fail("\"data_offsets\" " + show_json(off) + " hold " + std::to_string(end - begin) + " bytes, but " +
         std::string(dtype->name) + " shape " + shape.str() + " needs " + std::to_string(bits / 8));
  return {name, dtype, std::move(shape), begin, end};
}

/// The size of the stream from its current position, leaving it there.
inline std::uint64_t safetensors_stream_size(std::istream& in, const std::string& ctx) {
  const auto start = in.tellg();
  if (start == std::streampos(-1)) throw IOError(ctx + "cannot read: the stream is not seekable or has failed");
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  in.seekg(start);
  if (end == std::streampos(-1) || end < start) throw IOError(ctx + "cannot find the size of the stream");
  return static_cast<std::uint64_t>(end - start);
}

/// Reads exactly n bytes at `pos` (from the stream's start `base`).
inline void safetensors_read_at(std::istream& in, std::streampos base, std::uint64_t pos, void* dst, std::uint64_t n,
                                const std::string& ctx, const std::string& what) {
  if (n == 0) return;
  in.clear();
  in.seekg(base + static_cast<std::streamoff>(pos));
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (!in || static_cast<std::uint64_t>(in.gcount()) != n)
    throw IOError(ctx + "the file ended while reading " + what + " (was it changed while being read?)");
}

/// Reads and validates the header of the file starting at the stream's position.
inline SafetensorsHeader read_safetensors_header(std::istream& in, std::streampos base, std::uint64_t size,
                                                 const std::string& ctx) {
  if (size < 8)
    throw IOError(ctx + "the file has " + std::to_string(size) +
                  " bytes, fewer than the 8 of the header length; it is truncated or not a safetensors file");
  unsigned char len[8];
  safetensors_read_at(in, base, 0, len, 8, ctx, "the header length");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > kSafetensorsMaxHeader)
    throw IOError(ctx + "the header length " + std::to_string(n) +
                  " is more than safetensors' limit of 100000000 bytes (huge header); the file is corrupt or not a "
                  "safetensors file");
  if (n > size - 8)
    throw IOError(ctx + "the header length " + std::to_string(n) + " runs past the end of the file (" +
                  std::to_string(size) + " bytes); the file is truncated or not a safetensors file");
  std::string text(static_cast<std::size_t>(n), '\0');
  safetensors_read_at(in, base, 8, text.data(), n, ctx, "the header");

  // nlohmann stops at a NUL byte as at the end of the input; JSON allows none.
  if (const auto nul = text.find('\0'); nul != std::string::npos)
    throw IOError(ctx + "the header is not valid JSON (syntax error at byte " + std::to_string(nul + 1) +
                  " of the header); the file is corrupt or not a safetensors file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, SafetensorsJsonGuard(ctx));
  } catch (const nlohmann::json::parse_error& e) {
    throw IOError(ctx + "the header is not valid JSON (syntax error at byte " + std::to_string(e.byte) +
                  " of the header); the file is corrupt or not a safetensors file");
  } catch (const nlohmann::json::exception& e) {
    throw IOError(ctx + "the header is not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object())
    throw IOError(ctx + "the header is " + show_json(j) +
                  ", not a JSON object {name: {\"dtype\": ..., \"shape\": ..., \"data_offsets\": ...}, ...}");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (v.is_null()) continue;  // the reference reads null as "no metadata"
      if (!v.is_object()) throw IOError(ctx + "\"__metadata__\" is " + show_json(v) + ", not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw IOError(ctx + "\"__metadata__\" maps '" + m.key() + "' to " + show_json(m.value()) +
                        ", not a string; safetensors metadata maps strings to strings");
        h.metadata.emplace(m.key(), m.value().get<std::string>());
      }
      continue;
    }
    h.entries.push_back(parse_safetensors_entry(ctx, name, v));
  }
  // Entries come sorted by name; order them by offsets (names break ties) and
  // check that they tile the buffer.
  std::stable_sort(h.entries.begin(), h.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto& e : h.entries) {
    const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.begin > covered)
      throw IOError(ctx + "tensor '" + e.name + "' begins at byte " + std::to_string(e.begin) +
                    " of the data, but the tensors before it end at byte " + std::to_string(covered) +
                    ": the tensors leave a hole in the data");
    if (e.begin < covered)
      throw IOError(ctx + "tensor '" + e.name + "' with data_offsets " + range + " overlaps tensor '" + prev->name +
                    "' with data_offsets [" + std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "]");
    covered = e.end;
    prev = &e;
  }
  const std::uint64_t buffer = size - 8 - n;
  if (covered > buffer)
    throw IOError(ctx + "the tensors need " + std::to_string(covered) + " bytes of data but the file holds " +
                  std::to_string(buffer) + " after the header (truncated file)");
  if (covered < buffer)
    throw IOError(ctx + "the file has " + std::to_string(buffer - covered) +
                  " bytes after the last tensor's data; safetensors forbids bytes that no tensor covers");
  return h;
}

inline void require_eqx_dtype(const SafetensorsEntry& e, const std::string& ctx) {
  if (!e.dtype->in_eqx)
    throw IOError(ctx + "tensor '" + e.name + "' has dtype " + std::string(e.dtype->name) +
                  ", which eqx does not support (eqx reads " + std::string(kSafetensorsEqxDTypes) +
                  "); convert it before saving, e.g. with .float() in PyTorch or .astype(np.float32) in NumPy");
}

/// Reads the data of a validated entry into a new Array.
inline Array read_safetensors_tensor(std::istream& in, std::streampos base, const SafetensorsHeader& h,
                                     const SafetensorsEntry& e, const std::string& ctx) {
  require_eqx_dtype(e, ctx);
  Array a = ArrayAccess::allocate(e.shape, e.dtype->dtype);  // e.end - e.begin bytes, within the file
  auto* bytes = static_cast<unsigned char*>(ArrayAccess::mutable_data(a));
  safetensors_read_at(in, base, h.data_start + e.begin, bytes, e.end - e.begin, ctx, "tensor '" + e.name + "'");
  if (e.dtype->dtype == DType::bool_)
    for (std::uint64_t i = 0; i < e.end - e.begin; ++i) bytes[i] = bytes[i] != 0;  // only 0/1 are valid bools
  return a;
}

/// False if `s` is not valid UTF-8 (it could not be a JSON string).
inline bool safetensors_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

inline std::string safetensors_quote(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Writes a whole file to `out` as the reference writer lays it out.
inline void write_safetensors_stream(std::ostream& out, std::vector<std::pair<std::string, Array>> tensors,
                                     const std::map<std::string, std::string>& metadata, const std::string& ctx) {
  std::set<std::string_view> seen;
  std::vector<const void*> data(tensors.size());
  for (const auto& [name, a] : tensors) {
    if (!a.has_value())
      throw ValueError(ctx + "tensor '" + name + "' is an empty Array (None); leave it out");
    if (name == "__metadata__")
      throw ValueError(ctx + "the name '__metadata__' is reserved for the metadata; give the tensor another name");
    if (!safetensors_utf8(name))
      throw ValueError(ctx + "the tensor name " + safetensors_quote(name) + " is not valid UTF-8");
    if (!seen.insert(name).second)
      throw ValueError(ctx + "the name '" + name + "' is given to two tensors; safetensors names must be unique");
  }
  for (const auto& [k, v] : metadata)
    if (!safetensors_utf8(k) || !safetensors_utf8(v))
      throw ValueError(ctx + "the metadata entry " + safetensors_quote(k) + ": " + safetensors_quote(v) +
                       " is not valid UTF-8");
  std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    const auto ra = safetensors_rank(a.second.dtype()), rb = safetensors_rank(b.second.dtype());
    return ra != rb ? ra > rb : a.first < b.first;
  });
  for (std::size_t i = 0; i < tensors.size(); ++i) data[i] = tensors[i].second.raw_data();  // throws if traced

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, a] : tensors) {
    const std::uint64_t nbytes = static_cast<std::uint64_t>(a.size()) * itemsize(a.dtype());
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (auto d : a.shape()) shape.push_back(static_cast<std::uint64_t>(d));
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = kSafetensorsDTypes[safetensors_rank(a.dtype())].name;
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = {offset, offset + nbytes};
    header[name] = std::move(entry);
    offset += nbytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');  // align the data to 8 bytes, as the reference does
  if (text.size() > kSafetensorsMaxHeader)
    throw ValueError(ctx + "the header would be " + std::to_string(text.size()) +
                     " bytes, more than safetensors' limit of 100000000; write less metadata or fewer tensors");
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Array& a = tensors[i].second;
    const auto nbytes = static_cast<std::streamsize>(a.size()) * static_cast<std::streamsize>(itemsize(a.dtype()));
    if (nbytes) out.write(static_cast<const char*>(data[i]), nbytes);
  }
  if (!out) throw IOError(ctx + "writing failed (disk full or stream closed?)");
}

/// The state_dict name of a key path: its parts joined by dots.
inline std::string state_dict_name(const TreePath& path) {
  std::string s;
  bool first = true;
  for (const auto& e : path.entries()) {
    if (!first) s += '.';
    first = false;
    switch (e.kind) {
      case PathEntry::Kind::field: s += e.name; break;
      case PathEntry::Kind::index: s += std::to_string(e.index); break;
      case PathEntry::Kind::key: s += e.key; break;
    }
  }
  return s;
}

/// A non-empty Array leaf of a model with its file name.
struct SafetensorsLeaf {
  TreePath path;
  std::string name;
  Array array;
};

struct SafetensorsLeafCollector : ArrayLeafVisitor {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  std::vector<SafetensorsLeaf> leaves;
  bool array(const TreePath& path, const Array& a) {
    if (a.has_value()) leaves.push_back({path, state_dict_name(path), a});
    return true;
  }
};

/// The model's leaves named (and renamed), refusing empty, reserved and repeated names.
template <class T>
std::vector<SafetensorsLeaf> safetensors_leaves(const T& model, const SafetensorsOptions& opts,
                                                const std::string& who) {
  SafetensorsLeafCollector c;
  TreePath path;
  visit_tree(c, path, model);
  std::map<std::string, const TreePath*> seen;
  for (auto& leaf : c.leaves) {
    if (opts.rename) leaf.name = opts.rename(leaf.name);
    if (leaf.name.empty())
      throw ValueError(who + ": the leaf at " + leaf.path.display() +
                       " has an empty name; name it with SafetensorsOptions::rename (an Array that is the whole "
                       "model has no key path)");
    if (leaf.name == "__metadata__")
      throw ValueError(who + ": the leaf at " + leaf.path.display() +
                       " is named '__metadata__', which safetensors reserves; rename it with "
                       "SafetensorsOptions::rename");
    auto [it, fresh] = seen.emplace(leaf.name, &leaf.path);
    if (!fresh)
      throw ValueError(who + ": the leaves at " + it->second->display() + " and " + leaf.path.display() +
                       " are both named '" + leaf.name + "'; names must be unique (check SafetensorsOptions::rename)");
  }
  return std::move(c.leaves);
}

/// save_safetensors' (name, Array) pairs.
template <class T>
std::vector<std::pair<std::string, Array>> safetensors_named(const T& model, const SafetensorsOptions& opts) {
  std::vector<std::pair<std::string, Array>> tensors;
  for (auto& leaf : safetensors_leaves(model, opts, "eqx::save_safetensors"))
    tensors.emplace_back(std::move(leaf.name), std::move(leaf.array));
  return tensors;
}

/// "'a', 'b', ... (3 more)": at most 16 quoted names.
inline std::string safetensors_name_list(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 16; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 16) s += ", ... (" + std::to_string(names.size() - 16) + " more)";
  return s;
}

/// Puts the loaded Arrays into a copy of `like`, in leaf order.
struct SafetensorsLoader {
  using array_leaves_only = void;  // one shared walk: eqx/tree/walk.hpp
  const std::vector<Array>& arrays;
  std::size_t next = 0;
  Array array(const TreePath&, const Array& like) { return like.has_value() ? arrays[next++] : Array{}; }
};

inline SafetensorsFile read_safetensors_impl(std::istream& in, const std::string& ctx) {
  const std::uint64_t size = safetensors_stream_size(in, ctx);
  const std::streampos base = in.tellg();
  SafetensorsHeader h = read_safetensors_header(in, base, size, ctx);
  SafetensorsFile f;
  for (const auto& e : h.entries) require_eqx_dtype(e, ctx);  // refuse before reading anything
  for (const auto& e : h.entries) f.tensors.emplace_back(e.name, read_safetensors_tensor(in, base, h, e, ctx));
  f.metadata = std::move(h.metadata);
  return f;
}

template <class T>
T load_safetensors_impl(std::istream& in, const T& like, const SafetensorsOptions& opts, const std::string& who,
                        const std::string& ctx) {
  std::vector<SafetensorsLeaf> leaves = safetensors_leaves(like, opts, who);
  const std::uint64_t size = safetensors_stream_size(in, ctx);
  const std::streampos base = in.tellg();
  SafetensorsHeader h = read_safetensors_header(in, base, size, ctx);

  std::map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < h.entries.size(); ++i) by_name.emplace(h.entries[i].name, i);
  std::vector<const SafetensorsEntry*> found(leaves.size());
  std::vector<bool> used(h.entries.size());
  std::vector<std::string> missing, unused;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    auto it = by_name.find(leaves[i].name);
    if (it == by_name.end()) {
      missing.push_back("'" + leaves[i].name + "' (at " + leaves[i].path.display() + ")");
    } else {
      found[i] = &h.entries[it->second];
      used[it->second] = true;
    }
  }
  for (std::size_t i = 0; i < h.entries.size(); ++i)
    if (!used[i]) unused.push_back("'" + h.entries[i].name + "'");
  if (!missing.empty())
    throw IOError(ctx + "tensors of the model are missing from the file: " + safetensors_name_list(missing) +
                  (unused.empty() ? std::string("; the file has no other tensors")
                                  : "; the file's other tensors are " + safetensors_name_list(unused)) +
                  "; map the model's names to the file's with SafetensorsOptions::rename");
  if (opts.strict && !unused.empty())
    throw IOError(ctx + "the file has tensors the model does not have: " + safetensors_name_list(unused) +
                  "; pass SafetensorsOptions{.strict = false} to ignore them, or map names with "
                  "SafetensorsOptions::rename");
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const SafetensorsEntry& e = *found[i];
    const Array& a = leaves[i].array;
    require_eqx_dtype(e, ctx);
    if (e.dtype->dtype != a.dtype() || e.shape != a.shape())
      throw IOError(ctx + "at " + leaves[i].path.display() + " (tensor '" + e.name + "') expected " +
                    std::string(short_name(a.dtype())) + a.shape().str() + ", the file has " + e.type() +
                    "; the file was written for another model or layout, or `like` does not match it (convert "
                    "layouts with eqx::read_safetensors)");
  }
  std::vector<Array> arrays;
  arrays.reserve(leaves.size());
  for (std::size_t i = 0; i < leaves.size(); ++i)
    arrays.push_back(read_safetensors_tensor(in, base, h, *found[i], ctx));
  SafetensorsLoader loader{arrays};
  TreePath path;
  return rebuild_tree(loader, path, like);
}

inline std::string safetensors_ctx(const char* who, const std::filesystem::path* file) {
  return std::string(who) + ": " + (file ? file->string() + ": " : std::string());
}

}  // namespace detail

/// Writes `tensors` (names need not be sorted) and `metadata` to a stream as a safetensors file.
/// Usage: `std::ofstream f("t.safetensors", std::ios::binary); eqx::write_safetensors(f, {{"w", w}});`
inline void write_safetensors(std::ostream& out, const std::vector<std::pair<std::string, Array>>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  detail::write_safetensors_stream(out, tensors, metadata, "eqx::write_safetensors: ");
}

/// Writes a safetensors file, replacing `file` atomically (through a
/// temporary file in the same folder). Tensors are laid out as the reference
/// writer does (by dtype, then name), so read_safetensors returns them in that order.
/// Usage: `eqx::write_safetensors("t.safetensors", {{"fc.weight", w}, {"fc.bias", b}}, {{"format", "pt"}});`
inline void write_safetensors(const std::filesystem::path& file,
                              const std::vector<std::pair<std::string, Array>>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  detail::write_file_atomically(file, "eqx::write_safetensors", [&](std::ostream& out) {
    detail::write_safetensors_stream(out, tensors, metadata, detail::safetensors_ctx("eqx::write_safetensors", &file));
  });
}

/// Reads every tensor (in file order, i.e. by data offset) and the metadata of a safetensors stream.
/// Usage: `std::ifstream f("t.safetensors", std::ios::binary); eqx::SafetensorsFile t = eqx::read_safetensors(f);`
inline SafetensorsFile read_safetensors(std::istream& in) {
  return detail::read_safetensors_impl(in, detail::safetensors_ctx("eqx::read_safetensors", nullptr));
}

/// Reads every tensor and the metadata of a safetensors file; throws
/// eqx::IOError on a corrupt file or a dtype eqx lacks (F16, BF16, I64, ...).
/// Usage: `for (auto& [name, a] : eqx::read_safetensors("t.safetensors").tensors) ...`
inline SafetensorsFile read_safetensors(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IOError("eqx::read_safetensors: cannot open " + file.string());
  return detail::read_safetensors_impl(in, detail::safetensors_ctx("eqx::read_safetensors", &file));
}

/// Writes every non-empty Array leaf of `model` to a stream, named by its key path (see the file comment).
/// Usage: `std::ostringstream out; eqx::save_safetensors(out, model);`
template <class T>
void save_safetensors(std::ostream& out, const T& model, const SafetensorsOptions& opts = {}) {
  detail::write_safetensors_stream(out, detail::safetensors_named(model, opts), opts.metadata,
                                   "eqx::save_safetensors: ");
}

/// Writes every non-empty Array leaf of `model`, named in PyTorch's
/// state_dict style (`.layers[1].weight` -> "layers.1.weight", then
/// opts.rename), with opts.metadata as "__metadata__". Non-Array leaves
/// (doubles, bools, ints, strings, eqx::Static fields) are not written. The
/// file is replaced atomically (a temporary file renamed at the end).
/// Usage: `eqx::save_safetensors("model.safetensors", model, {.metadata = {{"format", "pt"}}});`
template <class T>
void save_safetensors(const std::filesystem::path& file, const T& model, const SafetensorsOptions& opts = {}) {
  auto tensors = detail::safetensors_named(model, opts);
  detail::write_file_atomically(file, "eqx::save_safetensors", [&](std::ostream& out) {
    detail::write_safetensors_stream(out, std::move(tensors), opts.metadata,
                                     detail::safetensors_ctx("eqx::save_safetensors", &file));
  });
}

/// load_safetensors from a stream (see the path overload).
/// Usage: `std::istringstream in(bytes); Model m = eqx::load_safetensors(in, like);`
template <class T>
T load_safetensors(std::istream& in, const T& like, const SafetensorsOptions& opts = {}) {
  return detail::load_safetensors_impl(in, like, opts, "eqx::load_safetensors",
                                       detail::safetensors_ctx("eqx::load_safetensors", nullptr));
}

/// A copy of `like` whose non-empty Array leaves are read from the tensors of
/// the same names (as save_safetensors names them, then opts.rename); other
/// leaves are kept from `like`. Every name, dtype and shape is checked before
/// anything is built: a tensor missing from the file, or (with opts.strict) a
/// tensor the model does not have, or a dtype/shape mismatch throws
/// eqx::IOError naming the leaf's path and the tensor.
/// Usage: `Model m = eqx::load_safetensors("model.safetensors", like, {.strict = false});`
template <class T>
T load_safetensors(const std::filesystem::path& file, const T& like, const SafetensorsOptions& opts = {}) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IOError("eqx::load_safetensors: cannot open " + file.string());
  return detail::load_safetensors_impl(in, like, opts, "eqx::load_safetensors",
                                       detail::safetensors_ctx("eqx::load_safetensors", &file));
}

}  // namespace eqx
