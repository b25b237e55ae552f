// .npy records and Equinox-format serialisation: byte layout, round trips,
// numpy interop, error paths and a fuzz-style robustness check.

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <eqx/eqx.hpp>
#include <eqx/io.hpp>
#include <eqx/tree.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace io_serialise_test {

namespace {

struct Linear {
  eqx::Array weight, bias;
};

eqx::Array identity(const eqx::Array& x) { return x; }

struct Model {
  std::vector<Linear> layers;
  double dropout;
  bool inference;
  int steps;
  float scale;
  std::string name;                      // not written (not array-like)
  eqx::Array (*activation)(const eqx::Array&);  // not written
  eqx::Static<int> width;                // not written (static field)
};

Model model(float fill) {
  return {{{eqx::full({2, 3}, fill), eqx::array({1.f, 2.f})}, {eqx::full({1, 2}, fill + 1), eqx::Array{}}},
          0.25, true, 7, 1.5f, "m", identity, {2}};
}

std::string bytes_of(const auto& tree) {
  std::ostringstream out;
  eqx::tree_serialise_leaves(out, tree);
  return out.str();
}

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("eqx_io_test_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("npy records have numpy's layout and round-trip every dtype", "[io]") {
  std::ostringstream out;
  eqx::write_npy(out, eqx::array({1.f, 2.f, 3.f}));
  std::string s = out.str();
  REQUIRE(s.size() == 128 + 12);
  CHECK(s.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(static_cast<unsigned char>(s[8]) == 118);  // HEADER_LEN, as numpy writes it
  CHECK(s[9] == 0);
  CHECK(s.substr(10, 57) == "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
  CHECK(s[127] == '\n');
  // numpy 1.24 leaves 21 - digits(shape[0]) spaces to grow axis 0 in place: a
  // rank-17 f32 record of ones has HEADER_LEN 182 (np.save), not 118.
  std::ostringstream high_rank;
  eqx::write_npy(high_rank, eqx::zeros(eqx::Shape::filled(17, 1)));
  CHECK(static_cast<unsigned char>(high_rank.str()[8]) == 182);
  CHECK(high_rank.str().size() == 192 + 4);

  std::vector<eqx::Array> arrays = {eqx::array(std::vector<double>{1.5, -2, 1e300}, {3}),
                                    eqx::array(std::vector<int>{-1, 2, 3, 4}, {2, 2}),
                                    eqx::array(std::vector<std::uint32_t>{4000000000u}, {1}),
                                    eqx::array(std::vector<bool>{true, false, true}, {3, 1}),
                                    eqx::array(3.25f),
                                    eqx::zeros({0, 4})};
  for (const auto& a : arrays) {
    std::stringstream io;
    eqx::write_npy(io, a);
    eqx::Array b = eqx::read_npy(io);
    CHECK(eqx::detail::arrays_identical(a, b));
  }
}

TEST_CASE("npy readers honour version 2.0, big-endian and Fortran order", "[io]") {
  // Version 2.0 header with a 4-byte length, '>i4' data, Fortran order.
  std::string dict = "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }";
  dict += std::string(64 - (12 + dict.size() + 1) % 64, ' ') + "\n";
  std::string rec("\x93NUMPY\x02\x00", 8);
  std::uint32_t len = static_cast<std::uint32_t>(dict.size());
  rec.append(reinterpret_cast<const char*>(&len), 4);
  rec += dict;
  // Column-major [[1,2,3],[4,5,6]] is 1 4 2 5 3 6, each big-endian.
  for (int v : {1, 4, 2, 5, 3, 6}) {
    const char be[4] = {0, 0, 0, static_cast<char>(v)};
    rec.append(be, 4);
  }
  std::istringstream in(rec);
  eqx::Array a = eqx::read_npy(in);
  CHECK(a.shape() == eqx::Shape{2, 3});
  CHECK(a.to_vector<int>() == std::vector<int>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("tree_serialise_leaves writes Equinox's records in leaf order", "[io]") {
  std::istringstream in(bytes_of(model(0.5f)));
  // Arrays in leaf order (the empty bias writes nothing), then the scalars.
  CHECK(eqx::read_npy(in).shape() == eqx::Shape{2, 3});
  CHECK(eqx::read_npy(in).to_vector<float>() == std::vector<float>{1, 2});
  CHECK(eqx::read_npy(in).shape() == eqx::Shape{1, 2});
  auto header = [&] { return eqx::detail::read_npy_header(in); };
  auto h = header();
  CHECK(h.descr() == "<f8");  // double dropout
  CHECK(h.shape.empty());
  in.ignore(8);
  h = header();
  CHECK(h.descr() == "|b1");  // bool inference
  in.ignore(1);
  h = header();
  CHECK(h.descr() == "<i8");  // int steps, as Python ints
  std::int64_t steps = 0;
  in.read(reinterpret_cast<char*>(&steps), 8);
  CHECK(steps == 7);
  h = header();
  CHECK(h.descr() == "<f4");  // float scale
  in.ignore(4);
  CHECK(in.peek() == std::char_traits<char>::eof());  // nothing for the string, function or Static field
}

TEST_CASE("tree_deserialise_leaves round-trips bit-exactly and checks before building", "[io]") {
  Model saved = model(0.5f);
  saved.dropout = 0.125;
  saved.inference = false;
  saved.steps = -3;
  std::istringstream in(bytes_of(saved));
  Model loaded = eqx::tree_deserialise_leaves(in, model(9.f));
  CHECK(eqx::tree_equal(loaded, saved));
  CHECK(loaded.dropout == 0.125);
  CHECK(loaded.steps == -3);
  CHECK_FALSE(loaded.inference);

  Model wrong = model(0.f);
  wrong.layers[0].weight = eqx::zeros({3, 3});
  std::istringstream in2(bytes_of(saved));
  CHECK_THROWS_AS(eqx::tree_deserialise_leaves(in2, wrong), eqx::IOError);
  std::istringstream in3(bytes_of(saved));
  CHECK_THROWS_WITH(eqx::tree_deserialise_leaves(in3, wrong),
                    Catch::Contains("at .layers[0].weight expected f32[3,3], the file has <f4 shape (2, 3)"));

  Model wrong_dtype = model(0.f);
  wrong_dtype.layers[1].weight = eqx::zeros({1, 2}, eqx::float64);
  std::istringstream in4(bytes_of(saved));
  CHECK_THROWS_AS(eqx::tree_deserialise_leaves(in4, wrong_dtype), eqx::IOError);
  std::istringstream in5(bytes_of(saved));
  CHECK_THROWS_WITH(eqx::tree_deserialise_leaves(in5, wrong_dtype),
                    Catch::Contains("at .layers[1].weight expected f64[1,2], the file has <f4 shape (1, 2)"));

  std::string bytes = bytes_of(saved);
  std::istringstream truncated(bytes.substr(0, bytes.size() - 10));
  CHECK_THROWS_AS(eqx::tree_deserialise_leaves(truncated, model(0.f)), eqx::IOError);
  std::istringstream truncated2(bytes.substr(0, bytes.size() - 10));
  CHECK_THROWS_WITH(eqx::tree_deserialise_leaves(truncated2, model(0.f)),
                    Catch::Contains("at .scale: eqx: the file ends in the middle of a .npy header"));
  std::istringstream short_file(bytes.substr(0, 128 + 24));
  CHECK_THROWS_AS(eqx::tree_deserialise_leaves(short_file, model(0.f)), eqx::IOError);
  std::istringstream short_file2(bytes.substr(0, 128 + 24));
  CHECK_THROWS_WITH(eqx::tree_deserialise_leaves(short_file2, model(0.f)),
                    Catch::Contains("the file ends before the leaf at .layers[0].bias"));
}

TEST_CASE("trees of every dtype round-trip bit-exactly", "[io]") {
  struct AllDtypes {
    std::map<std::string, eqx::Array> arrays;
    std::tuple<std::optional<eqx::Array>, std::optional<eqx::Array>> maybe;
  };
  AllDtypes t{{{"f32", eqx::array({0.1f, -0.0f, 3e38f})},
               {"f64", eqx::array(std::vector<double>{1e-300, -2.5}, {2, 1})},
               {"i32", eqx::array({-2147483647 - 1, 7})},
               {"u32", eqx::array(std::vector<std::uint32_t>{0u, 4294967295u}, {2})},
               {"bool", eqx::array(std::vector<bool>{true, false, false}, {1, 3})},
               {"empty", eqx::zeros({0, 2})}},
              {eqx::array(2.5f), std::nullopt}};
  std::istringstream in(bytes_of(t));
  AllDtypes like = eqx::tree_map([](const eqx::Array& a) { return eqx::zeros_like(a); }, t);
  AllDtypes back = eqx::tree_deserialise_leaves(in, like);
  CHECK(eqx::tree_equal(back, t));
  CHECK(back.arrays.at("u32").to_vector<std::uint32_t>() == std::vector<std::uint32_t>{0u, 4294967295u});
}

TEST_CASE("files are written atomically, with Equinox's default suffix", "[io]") {
  auto dir = temp_dir();
  eqx::tree_serialise_leaves(dir / "model", model(1.f));
  CHECK(std::filesystem::exists(dir / "model.eqx"));
  Model loaded = eqx::tree_deserialise_leaves(dir / "model", model(0.f));
  CHECK(eqx::tree_equal(loaded, model(1.f)));
  eqx::tree_serialise_leaves(dir / "model.bin", model(2.f));  // a suffix is kept
  CHECK(std::filesystem::exists(dir / "model.bin"));
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 2);  // no temporary files left behind
  CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::tree_deserialise_leaves(dir / "missing.eqx", model(0.f)); }) ==
        "eqx::tree_deserialise_leaves: cannot open " + (dir / "missing.eqx").string());
  const std::string no_dir = (dir / "no_such_dir" / "m.eqx").string();
  CHECK_THAT(eqx_test::message_of<eqx::IOError>([&] { eqx::tree_serialise_leaves(no_dir, model(0.f)); }),
             Catch::StartsWith("eqx::tree_serialise_leaves: cannot open " + no_dir + ".tmp") &&
                 Catch::EndsWith(" for writing"));
  // A target that cannot be replaced (a non-empty folder) fails at the rename: the old
  // contents stay, no temporary file is left, and the error is an eqx::IOError.
  std::filesystem::create_directories(dir / "taken.eqx" / "inside");
  CHECK_THAT(eqx_test::message_of<eqx::IOError>([&] { eqx::tree_serialise_leaves(dir / "taken.eqx", model(0.f)); }),
             Catch::StartsWith("eqx::tree_serialise_leaves: cannot rename " + (dir / "taken.eqx").string() + ".tmp") &&
                 Catch::Contains(" to " + (dir / "taken.eqx").string() + ": "));
  CHECK(std::filesystem::exists(dir / "taken.eqx" / "inside"));
  files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("numpy reads eqx's files and eqx reads numpy's", "[io][python]") {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) + " -c 'import numpy' > /dev/null 2>&1").c_str()) != 0) {
    EQX_TEST_SKIP("/usr/bin/python3 with numpy is not available (apt-get install python3-numpy)");
  }
  auto dir = temp_dir();
  {
    std::ofstream f(dir / "a.npy", std::ios::binary);
    eqx::write_npy(f, eqx::reshape(eqx::arange(6), {2, 3}));
  }
  eqx::tree_serialise_leaves(dir / "m.eqx", model(0.5f));
  std::string script =
      "import numpy as np, sys\n"
      "d = sys.argv[1]\n"
      "a = np.load(d + '/a.npy')\n"
      "assert a.dtype == np.int32 and a.tolist() == [[0, 1, 2], [3, 4, 5]], a\n"
      "with open(d + '/m.eqx', 'rb') as f:\n"
      "    recs = [np.load(f) for _ in range(7)]\n"
      "    assert f.read() == b''\n"
      "assert recs[0].shape == (2, 3) and recs[0].dtype == np.float32 and (recs[0] == 0.5).all()\n"
      "assert recs[3].dtype == np.float64 and recs[3] == 0.25\n"
      "assert recs[4].dtype == np.bool_ and recs[4]\n"
      "assert recs[5].dtype == np.int64 and recs[5] == 7\n"
      "assert recs[6].dtype == np.float32 and recs[6] == 1.5\n"
      "np.save(d + '/b.npy', np.arange(12, dtype=np.float64).reshape(3, 4).T)\n"  // Fortran order
      "np.save(d + '/c.npy', np.array([True, False]))\n";
  {
    std::ofstream f(dir / "check.py");
    f << script;
  }
  int rc = std::system((std::string(python) + " " + (dir / "check.py").string() + " " + dir.string()).c_str());
  REQUIRE(rc == 0);
  std::ifstream fb(dir / "b.npy", std::ios::binary);
  eqx::Array b = eqx::read_npy(fb);
  CHECK(b.shape() == eqx::Shape{4, 3});
  CHECK(b.to_vector<double>() == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  std::ifstream fc(dir / "c.npy", std::ios::binary);
  CHECK(eqx::read_npy(fc).to_vector<bool>() == std::vector<bool>{true, false});
  std::filesystem::remove_all(dir);
}

TEST_CASE("corrupt .npy records are rejected with a reason", "[io]") {
  auto read = [](const std::string& bytes) {
    std::istringstream in(bytes);
    return eqx::read_npy(in);
  };
  std::ostringstream out;
  eqx::write_npy(out, eqx::array({1.f, 2.f}));
  const std::string good = out.str();
  CHECK_THROWS_AS(read("hello world"), eqx::IOError);
  CHECK_THROWS_WITH(read("hello world"), Catch::Contains("not a .npy record: the magic string"));
  std::string v9 = good;
  v9[6] = 9;
  CHECK_THROWS_AS(read(v9), eqx::IOError);
  CHECK_THROWS_WITH(read(v9), Catch::Contains("unsupported .npy version 9.0"));
  std::string bad_key = good;
  bad_key.replace(bad_key.find("descr"), 5, "dtype");
  CHECK_THROWS_AS(read(bad_key), eqx::IOError);
  CHECK_THROWS_WITH(read(bad_key), Catch::Contains("corrupt .npy header (unknown key 'dtype')"));
  std::string i8 = good;
  i8.replace(i8.find("<f4"), 3, "<i8");
  CHECK_THROWS_AS(read(i8), eqx::IOError);
  CHECK_THROWS_WITH(read(i8), Catch::Contains("has dtype '<i8', which has no eqx dtype"));
  CHECK_THROWS_AS(read(good.substr(0, 5)), eqx::IOError);
  CHECK_THROWS_WITH(read(good.substr(0, 5)), Catch::Contains("the file ends in the middle of a .npy record's magic"));
  CHECK_THROWS_AS(read(good.substr(0, good.size() - 1)), eqx::IOError);
  CHECK_THROWS_WITH(read(good.substr(0, good.size() - 1)), Catch::Contains("truncated file"));
  CHECK_THROWS_AS(read(good.substr(0, 60)), eqx::IOError);
  CHECK_THROWS_WITH(read(good.substr(0, 60)), Catch::Contains("the file ends in the middle of a .npy header"));
  CHECK_THROWS_AS(eqx::write_npy(out, eqx::Array{}), eqx::ValueError);
  CHECK_THROWS_WITH(eqx::write_npy(out, eqx::Array{}), Catch::Contains("cannot write an empty Array (None)"));
}

TEST_CASE("mutated and truncated files never crash the loader", "[io][fuzz]") {
  const std::string good = bytes_of(model(0.5f));
  std::mt19937 rng(1234);
  int rejected = 0, loaded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    switch (i % 3) {
      case 0: bad.resize(rng() % good.size()); break;              // truncation
      case 1: bad[rng() % bad.size()] = static_cast<char>(rng()); break;  // one byte
      default:                                                      // a burst in a header
        for (int k = 0; k < 8; ++k) bad[(rng() % 128) + 128 * (rng() % 4)] = static_cast<char>(rng());
    }
    std::istringstream in(bad);
    try {
      Model m = eqx::tree_deserialise_leaves(in, model(0.f));
      ++loaded;  // a data byte changed: still a valid file
      CHECK(m.layers.size() == 2);
    } catch (const eqx::Error&) {
      ++rejected;
    }
  }
  CHECK(rejected > 1000);
  CHECK(loaded + rejected == 3000);
}

}  // namespace io_serialise_test
