#pragma once
// The .npy format (numpy.lib.format), read and written for every eqx dtype.
//
// A record is: magic "\x93NUMPY", version (1.0, 2.0 or 3.0), a little-endian
// header length (uint16 for 1.0, uint32 after), a Python-dict header
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with
// spaces and '\n' to a 64-byte boundary, then the raw data. Readers honour
// the stored header length, accept either byte order and Fortran order, and
// check every size against what the stream holds before allocating, so a
// truncated or corrupt file throws eqx::IOError instead of reading past it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/ops/shape.hpp"

namespace eqx {

/// A file or stream that cannot be read or written as requested.
class IOError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// The parsed header of one .npy record.
struct NpyHeader {
  char byte_order = '<';  // '<', '>' or '|'
  char kind = 'f';        // 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool
  std::size_t item_size = 4;
  bool fortran_order = false;
  Shape shape;

  std::string descr() const { return std::string(1, byte_order) + kind + std::to_string(item_size); }
  std::string str() const {
    std::string s = descr() + " shape (";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
  }
};

inline std::string npy_descr(DType d) {
  switch (d) {
    case DType::float32: return "<f4";
    case DType::float64: return "<f8";
    case DType::int32: return "<i4";
    case DType::uint32: return "<u4";
    case DType::bool_: return "|b1";
  }
  return "";
}

/// The eqx dtype stored by a header, or throws naming what was found.
inline DType npy_dtype(const NpyHeader& h, std::string_view where) {
  if (h.kind == 'f' && h.item_size == 4) return DType::float32;
  if (h.kind == 'f' && h.item_size == 8) return DType::float64;
  if (h.kind == 'i' && h.item_size == 4) return DType::int32;
  if (h.kind == 'u' && h.item_size == 4) return DType::uint32;
  if (h.kind == 'b' && h.item_size == 1) return DType::bool_;
  throw IOError("eqx: " + std::string(where) + ": the .npy record has dtype '" + h.descr() +
                "', which has no eqx dtype (supported: <f4, <f8, <i4, <u4, |b1)");
}

inline void write_npy_header(std::ostream& out, const std::string& descr, const Shape& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";
  // numpy (>= 1.24) leaves room to grow the first axis in place: 21 digits
  // minus those of shape[0], before the alignment padding.
  if (!shape.empty()) dict += std::string(21 - std::to_string(shape[0]).size(), ' ');
  // numpy pads so that magic (6) + version (2) + length field + header is a
  // multiple of 64, the header ending in '\n'.
  std::size_t total = 6 + 2 + 2 + dict.size() + 1;
  bool v2 = false;
  std::size_t padded = (total + 63) / 64 * 64;
  if (padded - 10 > 65535) {
    v2 = true;
    total = 6 + 2 + 4 + dict.size() + 1;
    padded = (total + 63) / 64 * 64;
  }
  dict += std::string(padded - total, ' ') + '\n';
  out.write("\x93NUMPY", 6);
  const char version[2] = {static_cast<char>(v2 ? 2 : 1), 0};
  out.write(version, 2);
  auto len = static_cast<std::uint32_t>(dict.size());
  const unsigned char len_bytes[4] = {static_cast<unsigned char>(len & 0xff), static_cast<unsigned char>((len >> 8) & 0xff),
                                      static_cast<unsigned char>((len >> 16) & 0xff), static_cast<unsigned char>(len >> 24)};
  out.write(reinterpret_cast<const char*>(len_bytes), v2 ? 4 : 2);
  out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
}

/// Writes one record of raw little-endian data (eqx only runs on little-endian hosts).
inline void write_npy_record(std::ostream& out, const std::string& descr, const Shape& shape, const void* data,
                             std::size_t nbytes) {
  write_npy_header(out, descr, shape);
  if (nbytes) out.write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  if (!out) throw IOError("eqx: writing a .npy record failed (disk full or stream closed?)");
}

/// Reads exactly n bytes or throws, naming what was being read.
inline void read_exact(std::istream& in, void* dst, std::size_t n, const char* what) {
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<std::size_t>(in.gcount()) != n)
    throw IOError(std::string("eqx: the file ends in the middle of ") + what + " (truncated or not a .npy stream)");
}

/// Tiny parser for the header dict; rejects anything it does not understand.
class NpyHeaderParser {
 public:
  explicit NpyHeaderParser(std::string_view text) : s_(text) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = quoted();
      expect(':');
      skip_space();
      if (key == "descr") {
        std::string d = quoted();
        if (d.size() < 3 || (d[0] != '<' && d[0] != '>' && d[0] != '|' && d[0] != '='))
          fail("unsupported descr '" + d + "'");
        h.byte_order = d[0] == '=' ? '<' : d[0];
        h.kind = d[1];
        h.item_size = static_cast<std::size_t>(integer(d.substr(2)));
        have_descr = true;
      } else if (key == "fortran_order") {
        if (s_.substr(pos_, 4) == "True") h.fortran_order = true, pos_ += 4;
        else if (s_.substr(pos_, 5) == "False") h.fortran_order = false, pos_ += 5;
        else fail("fortran_order is neither True nor False");
        have_order = true;
      } else if (key == "shape") {
        expect('(');
        while (true) {
          skip_space();
          if (peek() == ')') break;
          std::size_t start = pos_;
          while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
          if (start == pos_) fail("bad shape");
          h.shape.push_back(integer(s_.substr(start, pos_ - start)));
          if (h.shape.size() > 32) fail("more than 32 dimensions");
          skip_space();
          if (peek() == ',') ++pos_;
        }
        ++pos_;
        have_shape = true;
      } else {
        fail("unknown key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') ++pos_;
    }
    if (!have_descr || !have_order || !have_shape) fail("missing descr, fortran_order or shape");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw IOError("eqx: corrupt .npy header (" + why + "): " + std::string(s_.substr(0, 120)));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string quoted() {
    skip_space();
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  std::int64_t integer(std::string_view digits) const {
    if (digits.empty() || digits.size() > 15) fail("bad number '" + std::string(digits) + "'");
    std::int64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') fail("bad number '" + std::string(digits) + "'");
      v = v * 10 + (c - '0');
    }
    return v;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

/// Reads a record's header (magic, version, length, dict).
inline NpyHeader read_npy_header(std::istream& in) {
  unsigned char magic[8];
  read_exact(in, magic, 8, "a .npy record's magic string");
  if (std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw IOError("eqx: not a .npy record: the magic string \\x93NUMPY is missing");
  if (magic[6] < 1 || magic[6] > 3)
    throw IOError("eqx: unsupported .npy version " + std::to_string(magic[6]) + "." + std::to_string(magic[7]) +
                  " (eqx reads 1.0, 2.0 and 3.0)");
  unsigned char len_bytes[4] = {0, 0, 0, 0};
  read_exact(in, len_bytes, magic[6] == 1 ? 2 : 4, "a .npy header length");
  std::uint32_t len = len_bytes[0] | (len_bytes[1] << 8) | (len_bytes[2] << 16) | (std::uint32_t(len_bytes[3]) << 24);
  if (len > (1u << 24)) throw IOError("eqx: corrupt .npy header length " + std::to_string(len));
  std::string text(len, '\0');
  read_exact(in, text.data(), len, "a .npy header");
  NpyHeader h = NpyHeaderParser(text).parse();
  return h;
}

/// Reads the data of a record whose header was just read, as an eqx Array.
inline Array read_npy_data(std::istream& in, const NpyHeader& h, std::string_view where) {
  DType dtype = npy_dtype(h, where);
  std::uint64_t n = 1;
  for (auto d : h.shape) {
    if (d < 0 || (d > 0 && n > (std::uint64_t{1} << 40) / static_cast<std::uint64_t>(d)))
      throw IOError("eqx: " + std::string(where) + ": .npy shape " + h.shape.str() + " is too large or invalid");
    n *= static_cast<std::uint64_t>(d);
  }
  // Check the stream really holds the data before allocating it.
  const std::uint64_t nbytes = n * h.item_size;
  if (auto pos = in.tellg(); pos != std::streampos(-1)) {
    in.seekg(0, std::ios::end);
    auto end = in.tellg();
    in.seekg(pos);
    if (end != std::streampos(-1) && static_cast<std::uint64_t>(end - pos) < nbytes)
      throw IOError("eqx: " + std::string(where) + ": the file ends before the data of a " + h.str() +
                    " record (truncated file)");
  }
  Shape shape = h.shape;
  if (h.fortran_order) std::reverse(shape.begin(), shape.end());
  Array a = ArrayAccess::allocate(shape, dtype);
  auto* bytes = static_cast<unsigned char*>(ArrayAccess::mutable_data(a));
  read_exact(in, bytes, static_cast<std::size_t>(nbytes), "the data of a .npy record");
  if (h.byte_order == '>' && h.item_size > 1)
    for (std::uint64_t i = 0; i < n; ++i) std::reverse(bytes + i * h.item_size, bytes + (i + 1) * h.item_size);
  if (dtype == DType::bool_)
    for (std::uint64_t i = 0; i < n; ++i) bytes[i] = bytes[i] != 0;  // only 0/1 are valid bools
  if (h.fortran_order && shape.size() > 1) a = eqx::transpose(a);
  return a;
}

}  // namespace detail

/// Writes `a` as one .npy record (version 1.0; 2.0 for huge headers).
/// Usage: `std::ofstream f("x.npy", std::ios::binary); eqx::write_npy(f, x);`
inline void write_npy(std::ostream& out, const Array& a) {
  if (!a.has_value()) throw ValueError("eqx::write_npy: cannot write an empty Array (None)");
  detail::write_npy_record(out, detail::npy_descr(a.dtype()), a.shape(), a.raw_data(),
                           static_cast<std::size_t>(a.size()) * itemsize(a.dtype()));
}

/// Reads one .npy record (versions 1.0-3.0, either byte order, C or Fortran order).
/// Usage: `std::ifstream f("x.npy", std::ios::binary); eqx::Array x = eqx::read_npy(f);`
inline Array read_npy(std::istream& in) {
  detail::NpyHeader h = detail::read_npy_header(in);
  return detail::read_npy_data(in, h, "read_npy");
}

}  // namespace eqx
