// eqx/data: IDX files (plain and gzip), MNIST-style folders, Debian's
// Fashion-MNIST, shuffled batch indices, and every error path's message.

#include <zlib.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <eqx/data.hpp>
#include <eqx/eqx.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace data_data_test {

namespace {

namespace fs = std::filesystem;
using eqx::Array;
using eqx_test::message_of;

/// A fresh folder under the temp dir, removed at scope exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("eqx_data_test_" + std::to_string(std::random_device{}()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<unsigned char> idx_bytes(unsigned char type, const std::vector<std::uint32_t>& dims,
                                     const std::vector<unsigned char>& payload) {
  std::vector<unsigned char> b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) b.push_back(static_cast<unsigned char>(d >> shift));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

void write_plain(const fs::path& p, const std::vector<unsigned char>& b) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_gzip(const fs::path& p, const std::vector<unsigned char>& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<unsigned char> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("read_idx reads every IDX element type, big-endian, plain or gzip", "[data]") {
  TempDir dir;
  // u8 [2, 3]: 0 1 2 / 253 254 255
  auto u8 = idx_bytes(0x08, {2, 3}, {0, 1, 2, 253, 254, 255});
  write_plain(dir.path / "u8", u8);
  write_gzip(dir.path / "u8.gz", u8);
  for (const char* name : {"u8", "u8.gz"}) {
    Array a = eqx::data::read_idx(dir.path / name);
    CHECK(a.dtype() == eqx::int32);
    CHECK(a.shape() == eqx::Shape{2, 3});
    CHECK(a.to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1, 2, 253, 254, 255});
  }
  Array scaled = eqx::data::read_idx(dir.path / "u8.gz", eqx::float32, {.scale = 1.0 / 255});
  CHECK(scaled.dtype() == eqx::float32);
  CHECK(scaled.to_vector<float>() == std::vector<float>{0.f, 1 / 255.f, 2 / 255.f, 253 / 255.f, 254 / 255.f, 1.f});

  // i8 [3]: -128, -1, 127
  write_plain(dir.path / "i8", idx_bytes(0x09, {3}, {0x80, 0xFF, 0x7F}));
  CHECK(eqx::data::read_idx(dir.path / "i8").to_vector<std::int32_t>() == std::vector<std::int32_t>{-128, -1, 127});
  // i16 [2]: -2, 258
  write_plain(dir.path / "i16", idx_bytes(0x0B, {2}, {0xFF, 0xFE, 0x01, 0x02}));
  CHECK(eqx::data::read_idx(dir.path / "i16").to_vector<std::int32_t>() == std::vector<std::int32_t>{-2, 258});
  // i32 [1]: -16909061 = 0xFEFDFCFB
  write_plain(dir.path / "i32", idx_bytes(0x0C, {1}, {0xFE, 0xFD, 0xFC, 0xFB}));
  CHECK(eqx::data::read_idx(dir.path / "i32").to_vector<std::int32_t>() == std::vector<std::int32_t>{-16909061});
  // f32 [1]: 1.5 = 0x3FC00000; f64 [1]: -0.25 = 0xBFD0000000000000
  write_plain(dir.path / "f32", idx_bytes(0x0D, {1}, {0x3F, 0xC0, 0, 0}));
  Array f32 = eqx::data::read_idx(dir.path / "f32");
  CHECK(f32.dtype() == eqx::float32);
  CHECK(f32.item<float>() == 1.5f);
  write_plain(dir.path / "f64", idx_bytes(0x0E, {1}, {0xBF, 0xD0, 0, 0, 0, 0, 0, 0}));
  Array f64 = eqx::data::read_idx(dir.path / "f64");
  CHECK(f64.dtype() == eqx::float64);
  CHECK(f64.item<double>() == -0.25);
  // Zero-size and rank-0 files are valid.
  write_plain(dir.path / "empty", idx_bytes(0x08, {0, 28}, {}));
  CHECK(eqx::data::read_idx(dir.path / "empty").shape() == eqx::Shape{0, 28});
  write_plain(dir.path / "scalar", idx_bytes(0x08, {}, {7}));
  CHECK(eqx::data::read_idx(dir.path / "scalar").item<std::int32_t>() == 7);
}

TEST_CASE("read_idx refuses missing, truncated and corrupt files, naming the path", "[data]") {
  TempDir dir;
  const fs::path p = dir.path / "bad";
  const std::string at = "eqx::data::read_idx: " + p.string() + ": ";
  auto read = [&] { return eqx::data::read_idx(p); };

  CHECK(message_of<eqx::IOError>(read) == at + "cannot open (No such file or directory)");
  write_plain(p, {0, 0});
  CHECK(message_of<eqx::IOError>(read) == at + "truncated: 2 bytes, shorter than the 4-byte IDX magic number");
  write_plain(p, {'P', 'K', 3, 4, 0, 0});
  CHECK(message_of<eqx::IOError>(read) == at + "not an IDX file: its first two bytes are not zero");
  write_plain(p, idx_bytes(0x07, {1}, {0}));
  CHECK(message_of<eqx::IOError>(read) ==
        at + "unknown IDX element type 7 (expected 8, 9, 11, 12, 13 or 14); is this an IDX file?");
  write_plain(p, {0, 0, 8, 3, 0, 0, 0, 2});
  CHECK(message_of<eqx::IOError>(read) ==
        at + "truncated: the header declares 3 dimensions (16 bytes) but the file has 8 bytes");
  write_plain(p, idx_bytes(0x08, {2, 3}, {1, 2, 3, 4, 5}));
  CHECK(message_of<eqx::IOError>(read) ==
        at + "shape [2,3] of unsigned byte needs 18 bytes but the file has 17 bytes (truncated download or corrupt file?)");
  write_plain(p, idx_bytes(0x0B, {2}, {1, 2, 3, 4, 5}));
  CHECK(message_of<eqx::IOError>(read) ==
        at + "shape [2] of short needs 12 bytes but the file has 13 bytes (trailing bytes: corrupt file?)");
  // A header whose dimensions multiply past 2^64 is caught before any allocation.
  write_plain(p, idx_bytes(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(message_of<eqx::IOError>(read) ==
        at + "shape [4294967295,4294967295,4294967295] of double needs more than 18446744073709551615 bytes but the "
             "file has 24 bytes "
             "(truncated download or corrupt file?)");

  // gzip: cut short, and a flipped byte in the compressed data.
  std::vector<unsigned char> pixels(4096);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7);
  const fs::path gz = dir.path / "images.gz";
  write_gzip(gz, idx_bytes(0x08, {64, 64}, pixels));
  auto whole = read_all(gz);
  write_plain(p, {whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2)});
  CHECK_THROWS_AS(read(), eqx::IOError);
  CHECK_THAT(message_of<eqx::IOError>(read),
             Catch::StartsWith(at + "shape [64,64] of unsigned byte needs 4108 bytes but the file has ") &&
                 Catch::EndsWith(" bytes (truncated download or corrupt file?)"));
  auto flipped = whole;
  flipped[whole.size() / 2] ^= 0x55;
  write_plain(p, flipped);
  CHECK_THAT(message_of<eqx::IOError>(read), Catch::StartsWith(at) && Catch::Contains("corrupt"));
}

TEST_CASE("load_mnist reads a folder of four IDX files and checks them against each other", "[data]") {
  TempDir dir;
  // 2 test images of 2x2 pixels, gzip; labels unzipped (load_mnist takes either).
  write_gzip(dir.path / "t10k-images-idx3-ubyte.gz", idx_bytes(0x08, {2, 2, 2}, {0, 51, 102, 153, 204, 255, 0, 0}));
  write_plain(dir.path / "t10k-labels-idx1-ubyte", idx_bytes(0x08, {2}, {3, 9}));
  auto [images, labels] = eqx::data::load_mnist(dir.path, "test");
  CHECK(images.shape() == eqx::Shape{2, 1, 2, 2});
  CHECK(images.to_vector<float>() == std::vector<float>{0.f, 0.2f, 0.4f, 0.6f, 0.8f, 1.f, 0.f, 0.f});
  CHECK(labels.to_vector<std::int32_t>() == std::vector<std::int32_t>{3, 9});

  write_plain(dir.path / "t10k-labels-idx1-ubyte", idx_bytes(0x08, {3}, {3, 9, 1}));
  CHECK(message_of<eqx::IOError>([&] { eqx::data::load_mnist(dir.path, "test"); }) ==
        "eqx::data::load_mnist: " + (dir.path / "t10k-labels-idx1-ubyte").string() + " holds shape [3] but " +
            (dir.path / "t10k-images-idx3-ubyte.gz").string() +
            " holds 2 images; the two files must come from the same split");
  CHECK(message_of<eqx::ValueError>([&] { eqx::data::load_mnist(dir.path, "validation"); }) ==
        "eqx::data::load_mnist: split must be \"train\" or \"test\", got \"validation\"");
  // A missing folder: Fashion-MNIST's loader says which package provides it.
  const fs::path nowhere = dir.path / "nowhere";
  CHECK(message_of<eqx::IOError>([&] { eqx::data::load_fashion_mnist("train", nowhere); }) ==
        "eqx::data::read_idx: " + (nowhere / "train-images-idx3-ubyte.gz").string() +
            ": cannot open (No such file or directory); Fashion-MNIST comes from Debian's dataset-fashion-mnist "
            "package (apt-get install dataset-fashion-mnist), or pass the folder holding its four IDX files");
}

TEST_CASE("Debian's Fashion-MNIST reads with the values NumPy reads", "[data]") {
  // References: gzip + numpy.frombuffer on the same files (uint8 pixels).
  auto test = eqx::data::load_fashion_mnist("test");
  CHECK(test.images.shape() == eqx::Shape{10000, 1, 28, 28});
  CHECK(test.labels.shape() == eqx::Shape{10000});
  CHECK(eqx::slice(test.labels, 0, 0, 10).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
  const Array counts = eqx::sum(eqx::one_hot(test.labels, 10), 0);
  CHECK(counts.to_vector<float>() == std::vector<float>(10, 1000.f));
  // Pixel sums (as uint8) of the first image, the last image and the whole split.
  CHECK(eqx::sum(eqx::slice(test.images, 0, 0, 1)).item<float>() * 255 == Approx(33456).epsilon(1e-6));
  CHECK(eqx::sum(eqx::slice(test.images, 0, 9999, 10000)).item<float>() * 255 == Approx(24390).epsilon(1e-6));
  const fs::path dir = eqx::data::fashion_mnist_dir;
  CHECK(eqx::sum(eqx::data::read_idx(dir / "t10k-images-idx3-ubyte.gz", eqx::float64)).item<double>() == 573469082.0);
  CHECK(eqx::sum(eqx::astype(test.images, eqx::float64)).item<double>() * 255 == Approx(573469082).epsilon(1e-7));
  // Row 14, columns 10..15 of the first image.
  const Array row = eqx::slice(test.images, {{0, 1}, {}, {14, 15}, {10, 16}});
  const std::vector<float> expected{0, 0, 98 / 255.f, 136 / 255.f, 110 / 255.f, 109 / 255.f};
  CHECK(row.to_vector<float>() == expected);

  auto train = eqx::data::load_fashion_mnist("train");
  CHECK(train.images.shape() == eqx::Shape{60000, 1, 28, 28});
  CHECK(eqx::slice(train.labels, 0, 0, 10).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  CHECK(eqx::sum(eqx::data::read_idx(dir / "train-images-idx3-ubyte.gz", eqx::float64)).item<double>() ==
        3431114169.0);
  CHECK(eqx::data::fashion_mnist_classes[9] == "Ankle boot");
}

TEST_CASE("batch_indices: a permutation cut into equal batches", "[data]") {
  const auto key = eqx::random::key(3);
  auto batches = eqx::data::batch_indices(key, 10, 4);
  REQUIRE(batches.size() == 2);  // 10 = 4 + 4 + 2; the partial batch is dropped
  std::set<std::int32_t> seen;
  for (const Array& b : batches) {
    CHECK(b.shape() == eqx::Shape{4});
    CHECK(b.dtype() == eqx::int32);
    for (std::int32_t i : b.to_vector<std::int32_t>()) seen.insert(i);
  }
  CHECK(seen.size() == 8);
  CHECK(*seen.begin() >= 0);
  CHECK(*seen.rbegin() <= 9);
  // keep_partial: every index exactly once, in the order eqx::random::permutation gives.
  auto all = eqx::data::batch_indices(key, 10, 4, {.keep_partial = true});
  REQUIRE(all.size() == 3);
  CHECK(all[2].shape() == eqx::Shape{2});
  std::vector<std::int32_t> joined;
  for (const Array& b : all)
    for (std::int32_t i : b.to_vector<std::int32_t>()) joined.push_back(i);
  CHECK(joined == eqx::random::permutation(key, 10).to_vector<std::int32_t>());
  CHECK(eqx::data::batch_indices(eqx::random::key(4), 10, 4)[0].to_vector<std::int32_t>() !=
        batches[0].to_vector<std::int32_t>());
  CHECK(message_of<eqx::ValueError>([&] { eqx::data::batch_indices(key, 10, 0); }) ==
        "eqx::data::batch_indices: batch_size must be positive, got 0");
}

TEST_CASE("mutated and truncated IDX files never crash the reader", "[data][fuzz]") {
  TempDir dir;
  std::vector<unsigned char> pixels(300);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 13);
  const auto valid = idx_bytes(0x08, {3, 10, 10}, pixels);
  write_gzip(dir.path / "valid.gz", valid);
  const auto valid_gz = read_all(dir.path / "valid.gz");
  std::mt19937 rng(1234);
  const fs::path p = dir.path / "mutant";
  int loaded = 0, refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto bytes = trial % 2 ? valid : valid_gz;
    switch (rng() % 3) {
      case 0:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 1:  // flip a few bytes, mostly in the header
        for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
          bytes[rng() % std::min<std::size_t>(bytes.size(), rng() % 2 ? 24 : bytes.size())] ^=
              static_cast<unsigned char>(1 + rng() % 255);
        break;
      default:  // overwrite a dimension with a random (often huge) value
        if (bytes.size() >= 16 && trial % 2) {
          const std::size_t at = 4 + 4 * (rng() % 3);
          for (int k = 0; k < 4; ++k) bytes[at + k] = static_cast<unsigned char>(rng());
        }
    }
    write_plain(p, bytes);
    try {
      Array a = eqx::data::read_idx(p);
      CHECK(a.size() * 1 <= static_cast<std::int64_t>(valid.size()));
      ++loaded;
    } catch (const eqx::Error&) {
      ++refused;
    }
  }
  CHECK(loaded + refused == 2000);
  CHECK(refused > 1000);
  CHECK(loaded > 50);  // some mutants stay valid (pixel flips, consistent truncations of nothing)
}

}  // namespace data_data_test
