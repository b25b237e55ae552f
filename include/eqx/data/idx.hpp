#pragma once
// Reading IDX files, the format MNIST, Fashion-MNIST and their relatives ship
// in, compressed with gzip or not.
//
// An IDX file is a 4-byte magic number (two zero bytes, an element-type code,
// the number of dimensions), one big-endian uint32 per dimension, then the
// elements, big-endian, row-major. The reader decompresses through zlib
// (gzread reads a plain file unchanged), holds the whole decompressed file,
// and checks the header against the bytes it actually has before it builds
// anything: a truncated, corrupt or mislabelled file throws eqx::IOError
// naming the path, never reads past the data or allocates from an unchecked
// size.
//
// Needs zlib: link eqx::data (CMake), or -lz.

#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eqx/core/array.hpp"
#include "eqx/core/error.hpp"
#include "eqx/io/npy.hpp"
#include "eqx/ops/shape.hpp"

namespace eqx::data {

namespace detail {

inline std::string where(const std::filesystem::path& file) { return "eqx::data::read_idx: " + file.string() + ": "; }

/// The whole file, decompressed if it is gzip (gzread passes other files through).
inline std::vector<unsigned char> read_gzip_or_plain(const std::filesystem::path& file) {
  errno = 0;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(file.c_str(), "rb"), gzclose);
  if (!gz) {
    const char* why = errno ? std::strerror(errno) : "zlib could not open it";
    throw IOError(where(file) + "cannot open (" + why + ")");
  }
  std::vector<unsigned char> bytes;
  std::array<unsigned char, 1 << 16> chunk{};
  for (;;) {
    const int n = gzread(gz.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(gz.get(), &code);
      throw IOError(where(file) + "corrupt gzip data (" + message + ")");
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  }
  int code = 0;
  const char* message = gzerror(gz.get(), &code);
  if (code != Z_OK && code != Z_BUF_ERROR)  // Z_BUF_ERROR: a gzip stream cut short, reported below by size
    throw IOError(where(file) + "corrupt gzip data (" + message + ")");
  return bytes;
}

inline std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

/// An IDX element type: its code, size in bytes and name.
struct IdxType {
  unsigned char code;
  std::size_t size;
  std::string_view name;
};

inline IdxType idx_type(unsigned char code, const std::filesystem::path& file) {
  switch (code) {
    case 0x08: return {code, 1, "unsigned byte"};
    case 0x09: return {code, 1, "signed byte"};
    case 0x0B: return {code, 2, "short"};
    case 0x0C: return {code, 4, "int"};
    case 0x0D: return {code, 4, "float"};
    case 0x0E: return {code, 8, "double"};
    default:
      throw IOError(where(file) + "unknown IDX element type " + std::to_string(code) +
                    " (expected 8, 9, 11, 12, 13 or 14); is this an IDX file?");
  }
}

/// One big-endian element at p, as a double (exact for every IDX type).
inline double idx_element(const unsigned char* p, unsigned char code) {
  switch (code) {
    case 0x08: return p[0];
    case 0x09: return static_cast<signed char>(p[0]);
    case 0x0B: return static_cast<std::int16_t>((p[0] << 8) | p[1]);
    case 0x0C: return static_cast<std::int32_t>(big_endian_u32(p));
    case 0x0D: {
      const std::uint32_t bits = big_endian_u32(p);
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    default: {
      const std::uint64_t bits = (std::uint64_t{big_endian_u32(p)} << 32) | big_endian_u32(p + 4);
      double d;
      std::memcpy(&d, &bits, 8);
      return d;
    }
  }
}

/// The dtype an IDX element type reads as when none is asked for.
inline DType natural_dtype(unsigned char code) {
  return code == 0x0D ? float32 : code == 0x0E ? float64 : int32;
}

template <class T>
void fill(Array& out, const unsigned char* data, const IdxType& type, double scale) {
  T* dst = static_cast<T*>(eqx::detail::ArrayAccess::mutable_data(out));
  const auto n = static_cast<std::size_t>(out.size());
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(idx_element(data + i * type.size, type.code) * scale);
}

}  // namespace detail

/// Options for read_idx.
struct IdxOptions {
  /// Multiplies every element (e.g. 1.0 / 255 to read pixels into [0, 1]).
  double scale = 1.0;
};

/// Reads an IDX file (gzip-compressed or plain) into an Array of the file's
/// shape. Bytes, shorts and ints read as int32, floats as float32, doubles as
/// float64, unless `dtype` asks for another (float32 for pixels, say).
/// Usage: `eqx::Array images = eqx::data::read_idx("train-images-idx3-ubyte.gz", eqx::float32, {.scale = 1.0 / 255});`
inline Array read_idx(const std::filesystem::path& file, std::optional<DType> dtype = std::nullopt, IdxOptions opts = {}) {
  const std::vector<unsigned char> bytes = detail::read_gzip_or_plain(file);
  if (bytes.size() < 4)
    throw IOError(detail::where(file) + "truncated: " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 4-byte IDX magic number");
  if (bytes[0] != 0 || bytes[1] != 0)
    throw IOError(detail::where(file) + "not an IDX file: its first two bytes are not zero");
  const detail::IdxType type = detail::idx_type(bytes[2], file);
  const std::size_t rank = bytes[3];
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    throw IOError(detail::where(file) + "truncated: the header declares " + std::to_string(rank) + " dimensions (" +
                  std::to_string(header) + " bytes) but the file has " + std::to_string(bytes.size()) + " bytes");
  Shape shape;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t needed = type.size;  // bytes of data, saturating at kMax: a corrupt header cannot overflow it
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint32_t d = detail::big_endian_u32(&bytes[4 + 4 * i]);
    shape.push_back(static_cast<std::int64_t>(d));
    needed = (d != 0 && needed > kMax / d) ? kMax : needed * d;
  }
  if (needed != kMax && needed > kMax - header) needed = kMax;
  if (needed != kMax) needed += header;
  if (bytes.size() != needed)
    throw IOError(detail::where(file) + "shape " + shape.str() + " of " + std::string(type.name) + " needs " +
                  (needed == kMax ? "more than " + std::to_string(kMax) : std::to_string(needed)) +
                  " bytes but the file has " + std::to_string(bytes.size()) + " bytes" +
                  (bytes.size() < needed ? " (truncated download or corrupt file?)" : " (trailing bytes: corrupt file?)"));
  const DType out_dtype = dtype.value_or(detail::natural_dtype(type.code));
  Array out = eqx::detail::ArrayAccess::allocate(shape, out_dtype);
  const unsigned char* data = bytes.data() + header;
  switch (out_dtype) {
    case float32: detail::fill<float>(out, data, type, opts.scale); break;
    case float64: detail::fill<double>(out, data, type, opts.scale); break;
    case int32: detail::fill<std::int32_t>(out, data, type, opts.scale); break;
    case uint32: detail::fill<std::uint32_t>(out, data, type, opts.scale); break;
    case bool_: detail::fill<bool>(out, data, type, opts.scale); break;
  }
  return out;
}

}  // namespace eqx::data
