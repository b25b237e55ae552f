// Safetensors files: state_dict names, round trips, byte layout against the
// reference writer's own test vectors, NumPy interop (tests/io/safetensors_check.py),
// every validation error with its exact message, and a fuzz-style robustness check.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <eqx/io/safetensors.hpp>

#include "check.hpp"

// Each test file keeps its names in its own namespace: the files are compiled
// together in unity batches (tests/CMakeLists.txt).
namespace io_safetensors_test {

namespace {

struct Block {
  eqx::Array weight, bias;
};
struct Stats {
  eqx::Array counts, mask;
};
struct Net {
  std::vector<Block> layers;
  Stats stats;
  eqx::Array scale;
  eqx::Array ids;
  eqx::Array empty;
  std::map<std::string, eqx::Array> extra;
  double dropout;          // a Python-scalar-like leaf: not a tensor
  bool inference;          // likewise
  eqx::Static<int> width;  // static: not a leaf
  std::string name;        // not array-like
};

// The values tests/io/safetensors_check.py expects (its EXPECTED).
Net net() {
  return {{{eqx::array(std::vector<float>{0.5f, -1, 2, 3.25f, -0.125f, 1e-3f}, {2, 3}), eqx::array({1.5f, -2.5f})},
           {eqx::array(std::vector<float>{7, -8}, {1, 2}), eqx::Array{}}},
          {eqx::array(std::vector<int>{-2147483647 - 1, 7, 0, 2147483647}, {2, 2}),
           eqx::array(std::vector<bool>{true, false, true})},
          eqx::array(0.1),
          eqx::array(std::vector<std::uint32_t>{0u, 4000000000u, 4294967295u}),
          eqx::zeros({0}),
          {{"alpha", eqx::array(std::vector<double>{1e-300, -2.5})}},
          0.25,
          true,
          {3},
          "net"};
}

Net zeros_like(const Net& n) {
  return eqx::tree_map([](const eqx::Array& a) { return eqx::zeros_like(a); }, n);
}

const std::map<std::string, std::string> kMetadata = {{"format", "pt"}, {"producer", "eqx \xc3\xa9"}};

std::string bytes_of(const auto& model, const eqx::SafetensorsOptions& opts = {}) {
  std::ostringstream out;
  eqx::save_safetensors(out, model, opts);
  return out.str();
}

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

/// A file with this JSON header and data buffer.
std::string file_of(const std::string& json, const std::string& data = "") { return le64(json.size()) + json + data; }

std::string read_error(const std::string& bytes) {
  std::istringstream in(bytes);
  return eqx_test::message_of<eqx::IOError>([&] { eqx::read_safetensors(in); });
}

eqx::SafetensorsFile read_bytes(const std::string& bytes) {
  std::istringstream in(bytes);
  return eqx::read_safetensors(in);
}

std::vector<std::string> names_of(const eqx::SafetensorsFile& f) {
  std::vector<std::string> names;
  for (const auto& t : f.tensors) names.push_back(t.first);
  return names;
}

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("eqx_st_test_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("save_safetensors names leaves by key path and round-trips every dtype", "[io][safetensors]") {
  std::ostringstream out;
  eqx::save_safetensors(out, net(), {.metadata = kMetadata});
  eqx::SafetensorsFile f = read_bytes(out.str());
  // File order: the reference writer's (F64, F32, U32, I32, BOOL, then by name); no None bias, no scalars.
  CHECK(names_of(f) == std::vector<std::string>{"extra.alpha", "scale", "empty", "layers.0.bias", "layers.0.weight",
                                                "layers.1.weight", "ids", "stats.counts", "stats.mask"});
  CHECK(f.metadata == kMetadata);
  eqx_test::check<double>(f.at("extra.alpha"), {2}, {1e-300, -2.5});
  eqx_test::check<double>(f.at("scale"), {}, {0.1});
  eqx_test::check<float>(f.at("empty"), {0}, {});
  eqx_test::check<float>(f.at("layers.0.weight"), {2, 3}, {0.5f, -1, 2, 3.25f, -0.125f, 1e-3f});
  eqx_test::check<float>(f.at("layers.1.weight"), {1, 2}, {7, -8});
  eqx_test::check<std::uint32_t>(f.at("ids"), {3}, {0u, 4000000000u, 4294967295u});
  eqx_test::check<int>(f.at("stats.counts"), {2, 2}, {-2147483647 - 1, 7, 0, 2147483647});
  eqx_test::check<bool>(f.at("stats.mask"), {3}, {true, false, true});
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { f.at("layers.1.bias"); }) ==
        "eqx::SafetensorsFile::at: no tensor named 'layers.1.bias'; the file has 'extra.alpha', 'scale', 'empty', "
        "'layers.0.bias', 'layers.0.weight', 'layers.1.weight', 'ids', 'stats.counts', 'stats.mask'");

  // load_safetensors fills the Array leaves by name; everything else comes from `like`.
  Net like = zeros_like(net());
  like.dropout = 0.5;
  like.name = "other";
  std::istringstream in(out.str());
  Net loaded = eqx::load_safetensors(in, like);
  CHECK(loaded.dropout == 0.5);
  CHECK(loaded.name == "other");
  CHECK(*loaded.width == 3);
  CHECK_FALSE(loaded.layers[1].bias.has_value());
  loaded.dropout = 0.25;
  loaded.name = "net";
  CHECK(eqx::tree_equal(loaded, net()));
  CHECK(eqx::detail::arrays_identical(loaded.extra.at("alpha"), net().extra.at("alpha")));

  // A model that is one Array has no key path: it needs a name.
  CHECK(eqx_test::message_of<eqx::ValueError>([] { bytes_of(eqx::zeros({2})); }) ==
        "eqx::save_safetensors: the leaf at (root) has an empty name; name it with SafetensorsOptions::rename (an "
        "Array that is the whole model has no key path)");
  const std::string one = bytes_of(eqx::zeros({2}), {.rename = [](std::string_view) { return std::string("w"); }});
  CHECK(names_of(read_bytes(one)) == std::vector<std::string>{"w"});
}

TEST_CASE("files are the reference writer's bytes", "[io][safetensors]") {
  auto written = [](const std::vector<std::pair<std::string, eqx::Array>>& t,
                    const std::map<std::string, std::string>& m = {}) {
    std::ostringstream out;
    eqx::write_safetensors(out, t, m);
    const std::string s = out.str();
    return std::vector<int>(s.begin(), s.end());
  };
  auto bytes = [](std::initializer_list<int> b) {
    std::vector<int> v;
    for (int x : b) v.push_back(static_cast<signed char>(x));
    return v;
  };
  const eqx::Array six = eqx::array(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3});
  // huggingface/safetensors tensor.rs, test_serialization: {"attn.0": F32 [1,2,3]}.
  CHECK(written({{"attn.0", six}}) ==
        bytes({64,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97, 116, 116, 110, 46, 48,  34,  58, 123, 34,
               100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50, 34,  44,  34,  115, 104, 97,  112, 101, 34,
               58,  91,  49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102, 115,
               101, 116, 115, 34,  58,  91,  48,  44,  50,  52,  93,  125, 125, 0,  0,   0,   0,   0,   0,   128, 63,
               0,   0,   0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64}));
  // test_serialization_forced_alignement: a shorter name, padded with spaces to 8 bytes.
  CHECK(written({{"attn0", eqx::reshape(six, {1, 1, 2, 3})}}) ==
        bytes({72,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 48,  34,  58,  123, 34,  100,
               116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,  44,  34,  115, 104, 97,  112, 101, 34,  58,
               91,  49,  44,  49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111, 102, 102,
               115, 101, 116, 115, 34,  58,  91,  48,  44,  50,  52,  93,  125, 125, 32,  32,  32,  32,  32,
               32,  32,  0,   0,   0,   0,   0,   0,   128, 63,  0,   0,   0,   64,  0,   0,   64,  64,  0,
               0,   128, 64,  0,   0,   160, 64}));
  // test_empty: no tensors, then metadata {"framework": "pt"}.
  CHECK(written({}) == bytes({8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  CHECK(written({}, {{"framework", "pt"}}) ==
        bytes({40,  0,   0,   0,   0,   0,   0,   0,   123, 34,  95,  95,  109, 101, 116, 97,  100, 97,  116, 97, 95,
               95,  34,  58,  123, 34,  102, 114, 97,  109, 101, 119, 111, 114, 107, 34,  58,  34,  112,
               116, 34,  125, 125, 32,  32,  32,  32,  32}));

  // The test model: compact JSON, metadata first, tensors by dtype then name, padded to 8.
  const std::string s = bytes_of(net(), {.metadata = kMetadata});
  const std::string json =
      "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"eqx \xc3\xa9\"},"
      "\"extra.alpha\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
      "\"scale\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]},"
      "\"empty\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]},"
      "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
      "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[32,56]},"
      "\"layers.1.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[56,64]},"
      "\"ids\":{\"dtype\":\"U32\",\"shape\":[3],\"data_offsets\":[64,76]},"
      "\"stats.counts\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[76,92]},"
      "\"stats.mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[92,95]}}";
  const std::size_t n = (json.size() + 7) / 8 * 8;
  REQUIRE(s.size() == 8 + n + 95);
  CHECK(s.substr(0, 8) == le64(n));
  CHECK(s.substr(8, json.size()) == json);
  CHECK(s.substr(8 + json.size(), n - json.size()) == std::string(n - json.size(), ' '));
  double alpha0;  // F64 data starts 8-aligned in the file
  std::memcpy(&alpha0, s.data() + 8 + n, 8);
  CHECK(alpha0 == 1e-300);
  CHECK(s.substr(s.size() - 3) == std::string("\x01\x00\x01", 3));  // BOOL bytes
}

TEST_CASE("NumPy reads eqx's safetensors files and eqx reads NumPy's", "[io][safetensors][python]") {
  const char* python = "/usr/bin/python3";
  if (std::system((std::string(python) + " -c 'import numpy' > /dev/null 2>&1").c_str()) != 0) {
    EQX_TEST_SKIP("/usr/bin/python3 with numpy is not available (apt-get install python3-numpy)");
  }
  const std::string script = std::string(EQX_TEST_SOURCE_DIR) + "/io/safetensors_check.py";
  auto dir = temp_dir();
  // A file another producer wrote: spaced JSON, keys out of data order, metadata last, unaligned data.
  const auto theirs = dir / "numpy.safetensors";
  REQUIRE(std::system((std::string(python) + " " + script + " write " + theirs.string()).c_str()) == 0);
  eqx::SafetensorsFile f = eqx::read_safetensors(theirs);
  CHECK(names_of(f) == std::vector<std::string>{"mask", "step", "encoder.weight", "empty", "ids", "encoder.bias"});
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "np"}, {"note", "h\xc3\xa9llo \"q\"\n"}});
  eqx_test::check<bool>(f.at("mask"), {3}, {true, false, true});
  eqx_test::check<int>(f.at("step"), {}, {-7});
  eqx_test::check<float>(f.at("encoder.weight"), {2, 3}, {-1, -0.5f, 0, 0.5f, 1, 1.5f});
  eqx_test::check<float>(f.at("empty"), {0, 4}, {});
  eqx_test::check<std::uint32_t>(f.at("ids"), {2, 2}, {0u, 1u, 4000000000u, 4294967295u});
  CHECK(f.at("encoder.bias").to_vector<double>() == std::vector<double>{1e-300, -2.5, 3.25});
  struct Encoder {
    eqx::Array weight, bias;
  };
  struct Theirs {
    Encoder encoder;
    eqx::Array step, ids, mask, empty;
  };
  Theirs like{{eqx::zeros({2, 3}), eqx::zeros({3}, eqx::float64)},
              eqx::zeros({}, eqx::int32),
              eqx::zeros({2, 2}, eqx::uint32),
              eqx::zeros({3}, eqx::bool_),
              eqx::zeros({0, 4})};
  Theirs loaded = eqx::load_safetensors(theirs, like);
  CHECK(loaded.encoder.bias.to_vector<double>() == std::vector<double>{1e-300, -2.5, 3.25});
  CHECK(loaded.step.item<int>() == -7);

  // Ours, checked by the script value by value and against the reference writer's bytes.
  const auto ours = dir / "eqx.safetensors";
  eqx::save_safetensors(ours, net(), {.metadata = kMetadata});
  CHECK(std::system((std::string(python) + " " + script + " check " + ours.string()).c_str()) == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("files are replaced atomically and missing files are reported", "[io][safetensors]") {
  auto dir = temp_dir();
  const auto path = dir / "m.safetensors";
  eqx::save_safetensors(path, net());
  Net second = net();
  second.layers[0].bias = eqx::array({9.f, 9.f});
  eqx::save_safetensors(path, second);  // replaces
  CHECK(eqx::load_safetensors(path, zeros_like(net())).layers[0].bias.to_vector<float>() == std::vector<float>{9, 9});
  // A save failing after the temporary file was opened leaves the old file and no temporary behind.
  CHECK(eqx_test::message_of<eqx::ValueError>([&] {
          eqx::save_safetensors(path, net(), {.rename = [](std::string_view n) { return std::string(n) + "\xff"; }});
        }) == "eqx::save_safetensors: " + path.string() +
                  ": the tensor name \"layers.0.weight\xef\xbf\xbd\" is not valid UTF-8");
  eqx::write_safetensors(dir / "t.safetensors", {{"w", eqx::ones({2})}}, {{"k", "v"}});
  CHECK(eqx::read_safetensors(dir / "t.safetensors").metadata == std::map<std::string, std::string>{{"k", "v"}});
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 2);
  CHECK(eqx::load_safetensors(path, zeros_like(net())).layers[0].bias.to_vector<float>() == std::vector<float>{9, 9});

  const auto missing = dir / "missing.safetensors";
  CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::read_safetensors(missing); }) ==
        "eqx::read_safetensors: cannot open " + missing.string());
  CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::load_safetensors(missing, net()); }) ==
        "eqx::load_safetensors: cannot open " + missing.string());
  const auto nowhere = dir / "no_such_dir" / "m.safetensors";
  CHECK_THROWS_WITH(eqx::save_safetensors(nowhere, net()),
                    Catch::StartsWith("eqx::save_safetensors: cannot open " + nowhere.string() + ".tmp"));
  // Errors from a file name it.
  { std::ofstream(dir / "short.safetensors", std::ios::binary) << "abc"; }
  CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::read_safetensors(dir / "short.safetensors"); }) ==
        "eqx::read_safetensors: " + (dir / "short.safetensors").string() +
            ": the file has 3 bytes, fewer than the 8 of the header length; it is truncated or not a safetensors file");
  std::filesystem::remove_all(dir);
}

TEST_CASE("rename, strict = false and metadata", "[io][safetensors]") {
  auto prefix = [](std::string_view n) { return "model." + std::string(n); };
  const std::string renamed = bytes_of(net(), {.rename = prefix, .metadata = {{"format", "pt"}}});
  eqx::SafetensorsFile f = read_bytes(renamed);
  CHECK(names_of(f) == std::vector<std::string>{"model.extra.alpha", "model.scale", "model.empty",
                                                "model.layers.0.bias", "model.layers.0.weight", "model.layers.1.weight",
                                                "model.ids", "model.stats.counts", "model.stats.mask"});
  CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  {
    std::istringstream in(renamed);
    CHECK(eqx::tree_equal(eqx::load_safetensors(in, zeros_like(net()), {.rename = prefix}), net()));
  }
  {
    std::istringstream in(renamed);  // without the hook every name misses
    CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::load_safetensors(in, zeros_like(net())); }) ==
          "eqx::load_safetensors: tensors of the model are missing from the file: 'layers.0.weight' (at "
          ".layers[0].weight), 'layers.0.bias' (at .layers[0].bias), 'layers.1.weight' (at .layers[1].weight), "
          "'stats.counts' (at .stats.counts), 'stats.mask' (at .stats.mask), 'scale' (at .scale), 'ids' (at .ids), "
          "'empty' (at .empty), 'extra.alpha' (at .extra['alpha']); the file's other tensors are "
          "'model.extra.alpha', 'model.scale', 'model.empty', 'model.layers.0.bias', 'model.layers.0.weight', "
          "'model.layers.1.weight', 'model.ids', 'model.stats.counts', 'model.stats.mask'; map the model's names to "
          "the file's with SafetensorsOptions::rename");
  }

  // A file with more tensors than the model: an error unless strict = false.
  struct Small {
    std::vector<Block> layers;
  };
  Small small{{{eqx::zeros({2, 3}), eqx::zeros({2})}}};
  const std::string full = bytes_of(net());
  {
    std::istringstream in(full);
    CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::load_safetensors(in, small); }) ==
          "eqx::load_safetensors: the file has tensors the model does not have: 'extra.alpha', 'scale', 'empty', "
          "'layers.1.weight', 'ids', 'stats.counts', 'stats.mask'; pass SafetensorsOptions{.strict = false} to ignore "
          "them, or map names with SafetensorsOptions::rename");
  }
  {
    std::istringstream in(full);
    Small s = eqx::load_safetensors(in, small, {.strict = false});
    CHECK(eqx::tree_equal(s.layers[0], net().layers[0]));
  }
  // strict = false ignores tensors of dtypes eqx lacks, too; reading them is refused.
  const std::string f16 = file_of(
      "{\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
      "\"num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}}",
      std::string(40, '\0'));
  {
    std::istringstream in(f16);
    CHECK(eqx::load_safetensors(in, small, {.strict = false}).layers[0].weight.to_vector<float>() ==
          std::vector<float>(6, 0.f));
  }
  CHECK(read_error(f16) ==
        "eqx::read_safetensors: tensor 'num_batches_tracked' has dtype I64, which eqx does not support (eqx reads "
        "F32, F64, I32, U32 and BOOL); convert it before saving, e.g. with .float() in PyTorch or "
        ".astype(np.float32) in NumPy");

  // Names that cannot be written.
  Net twice = net();
  twice.extra["x"] = eqx::zeros({1});
  auto flatten_names = [](std::string_view n) {
    std::string s(n);
    return s.starts_with("extra.") ? std::string("extra") : s;
  };
  twice.extra["y"] = eqx::zeros({1});
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { bytes_of(twice, {.rename = flatten_names}); }) ==
        "eqx::save_safetensors: the leaves at .extra['alpha'] and .extra['x'] are both named 'extra'; names must be "
        "unique (check SafetensorsOptions::rename)");
  const std::map<std::string, eqx::Array> reserved{{"__metadata__", eqx::zeros({1})}};
  CHECK(eqx_test::message_of<eqx::ValueError>([&] { bytes_of(reserved); }) ==
        "eqx::save_safetensors: the leaf at ['__metadata__'] is named '__metadata__', which safetensors reserves; "
        "rename it with SafetensorsOptions::rename");
  std::ostringstream out;
  auto write_error = [&](const std::vector<std::pair<std::string, eqx::Array>>& t,
                         const std::map<std::string, std::string>& m = {}) {
    return eqx_test::message_of<eqx::ValueError>([&] { eqx::write_safetensors(out, t, m); });
  };
  CHECK(write_error({{"a", eqx::ones({1})}, {"a", eqx::ones({2})}}) ==
        "eqx::write_safetensors: the name 'a' is given to two tensors; safetensors names must be unique");
  CHECK(write_error({{"a", eqx::Array{}}}) ==
        "eqx::write_safetensors: tensor 'a' is an empty Array (None); leave it out");
  CHECK(write_error({{"__metadata__", eqx::ones({1})}}) ==
        "eqx::write_safetensors: the name '__metadata__' is reserved for the metadata; give the tensor another name");
  CHECK(write_error({{"bad\xff", eqx::ones({1})}}) ==
        "eqx::write_safetensors: the tensor name \"bad\xef\xbf\xbd\" is not valid UTF-8");
  CHECK(write_error({}, {{"k", "\xc3"}}) ==
        "eqx::write_safetensors: the metadata entry \"k\": \"\xef\xbf\xbd\" is not valid UTF-8");
  CHECK(out.str().empty());  // nothing written before the checks passed
}

TEST_CASE("load_safetensors checks dtypes and shapes before building", "[io][safetensors]") {
  const std::string bytes = bytes_of(net());
  auto load_error = [&](const Net& like) {
    std::istringstream in(bytes);
    return eqx_test::message_of<eqx::IOError>([&] { eqx::load_safetensors(in, like); });
  };
  Net wrong_shape = zeros_like(net());
  wrong_shape.layers[0].weight = eqx::zeros({3, 2});
  CHECK(load_error(wrong_shape) ==
        "eqx::load_safetensors: at .layers[0].weight (tensor 'layers.0.weight') expected f32[3,2], the file has "
        "F32[2,3]; the file was written for another model or layout, or `like` does not match it (convert layouts "
        "with eqx::read_safetensors)");
  Net wrong_dtype = zeros_like(net());
  wrong_dtype.extra["alpha"] = eqx::zeros({2});
  CHECK(load_error(wrong_dtype) ==
        "eqx::load_safetensors: at .extra['alpha'] (tensor 'extra.alpha') expected f32[2], the file has F64[2]; the "
        "file was written for another model or layout, or `like` does not match it (convert layouts with "
        "eqx::read_safetensors)");
  Net more = zeros_like(net());
  more.layers[1].bias = eqx::zeros({1});
  CHECK(load_error(more) ==
        "eqx::load_safetensors: tensors of the model are missing from the file: 'layers.1.bias' (at "
        ".layers[1].bias); the file has no other tensors; map the model's names to the file's with "
        "SafetensorsOptions::rename");
  // A tensor the model needs in a dtype eqx lacks.
  struct Half {
    eqx::Array w;
  };
  std::istringstream half(file_of("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", "abcd"));
  CHECK(eqx_test::message_of<eqx::IOError>([&] { eqx::load_safetensors(half, Half{eqx::zeros({2})}); }) ==
        "eqx::load_safetensors: tensor 'w' has dtype BF16, which eqx does not support (eqx reads F32, F64, I32, U32 "
        "and BOOL); convert it before saving, e.g. with .float() in PyTorch or .astype(np.float32) in NumPy");
}

TEST_CASE("corrupt safetensors files are rejected with a reason", "[io][safetensors]") {
  const std::string p = "eqx::read_safetensors: ";
  const std::string zeros16(16, '\0');
  auto entry = [](const std::string& name, const std::string& body) { return "\"" + name + "\":{" + body + "}"; };
  const std::string a = entry("a", "\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]");

  // Sizes.
  CHECK(read_error("abc") ==
        p + "the file has 3 bytes, fewer than the 8 of the header length; it is truncated or not a safetensors file");
  CHECK(read_error(le64(100000001) + "{}") ==
        p + "the header length 100000001 is more than safetensors' limit of 100000000 bytes (huge header); the file "
            "is corrupt or not a safetensors file");
  CHECK(read_error(le64(~std::uint64_t{0})) ==
        p + "the header length 18446744073709551615 is more than safetensors' limit of 100000000 bytes (huge "
            "header); the file is corrupt or not a safetensors file");
  CHECK(read_error(le64(60) + "{}") ==
        p + "the header length 60 runs past the end of the file (10 bytes); the file is truncated or not a "
            "safetensors file");

  // JSON.
  CHECK(read_error(file_of("{\"a\":")) ==
        p + "the header is not valid JSON (syntax error at byte 6 of the header); the file is corrupt or not a "
            "safetensors file");
  CHECK(read_error(file_of(std::string("{}\0\0", 4))) ==
        p + "the header is not valid JSON (syntax error at byte 3 of the header); the file is corrupt or not a "
            "safetensors file");
  CHECK(read_error(file_of("{\"\xff\":1}")) ==
        p + "the header is not valid JSON (syntax error at byte 3 of the header); the file is corrupt or not a "
            "safetensors file");
  CHECK(read_error(file_of("[1, 2]")) ==
        p + "the header is [1,2], not a JSON object {name: {\"dtype\": ..., \"shape\": ..., \"data_offsets\": ...}, "
            "...}");
  CHECK(read_error(file_of("{" + a + "," + a + "}", zeros16 + zeros16)) ==
        p + "the header has the key 'a' twice in one object; safetensors forbids duplicate names");
  CHECK(read_error(file_of("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}")) ==
        p + "the header has the key 'dtype' twice in one object; safetensors forbids duplicate names");
  CHECK(read_error(file_of("{\"a\":{\"shape\":[[2]]}}")) ==
        p + "the header nests lists or objects more than 3 deep; a safetensors header is {name: {\"dtype\": ..., "
            "\"shape\": [...], \"data_offsets\": [...]}, ...}");
  std::string rank65 = "[1";
  for (int i = 0; i < 64; ++i) rank65 += ",1";
  CHECK(read_error(file_of("{\"a\":{\"shape\":" + rank65 + "]}}")) ==
        p + "the header has a list of more than 64 values (eqx reads shapes of at most 64 dimensions)");

  // Entries.
  CHECK(read_error(file_of("{\"a\":5}")) ==
        p + "tensor 'a': its entry is 5, not an object {\"dtype\": ..., \"shape\": ..., \"data_offsets\": ...}");
  CHECK(read_error(file_of("{" + entry("a", "\"shape\":[2,2],\"data_offsets\":[0,16]") + "}", zeros16)) ==
        p + "tensor 'a': its entry has no \"dtype\"");
  CHECK(read_error(file_of("{" + entry("a", "\"dtype\":\"F32\",\"data_offsets\":[0,16]") + "}", zeros16)) ==
        p + "tensor 'a': its entry has no \"shape\"");
  CHECK(read_error(file_of("{" + entry("a", "\"dtype\":\"F32\",\"shape\":[2,2]") + "}", zeros16)) ==
        p + "tensor 'a': its entry has no \"data_offsets\"");
  auto with = [&](const std::string& dtype, const std::string& shape, const std::string& offsets,
                  const std::string& data = std::string(16, '\0')) {
    return read_error(file_of(
        "{" + entry("a", "\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets) + "}", data));
  };
  CHECK(with("32", "[2,2]", "[0,16]") == p + "tensor 'a': \"dtype\" is 32, not a string such as \"F32\"");
  CHECK(with("\"F17\"", "[2,2]", "[0,16]") ==
        p + "tensor 'a': unknown dtype \"F17\"; safetensors files for eqx hold F32, F64, I32, U32 and BOOL");
  CHECK(with("\"F32\"", "\"2x2\"", "[0,16]") ==
        p + "tensor 'a': \"shape\" is \"2x2\", not a list of non-negative integers");
  CHECK(with("\"F32\"", "[2,-2]", "[0,16]") ==
        p + "tensor 'a': \"shape\" is [2,-2], not a list of non-negative integers");
  CHECK(with("\"F32\"", "[2,2.0]", "[0,16]") ==
        p + "tensor 'a': \"shape\" is [2,2.0], not a list of non-negative integers");
  CHECK(with("\"F32\"", "[2,2]", "[16]") ==
        p + "tensor 'a': \"data_offsets\" is [16], not a pair [begin, end] of non-negative integers");
  CHECK(with("\"F32\"", "[2,2]", "[0,\"16\"]") ==
        p + "tensor 'a': \"data_offsets\" is [0,\"16\"], not a pair [begin, end] of non-negative integers");
  CHECK(with("\"F32\"", "[2,2]", "[16,0]") == p + "tensor 'a': \"data_offsets\" [16,0] end before they begin");
  CHECK(with("\"F32\"", "[2,2]", "[0,12]", std::string(12, '\0')) ==
        p + "tensor 'a': \"data_offsets\" [0,12] hold 12 bytes, but F32 shape [2,2] needs 16");
  CHECK(with("\"I32\"", "[2,18446744073709551614]", "[0,16]") ==
        p + "tensor 'a': shape [2,18446744073709551614] has too many elements");
  CHECK(with("\"I32\"", "[2,9223372036854775807]", "[0,16]") ==
        p + "tensor 'a': shape [2,9223372036854775807] has too many elements");
  CHECK(with("\"F4\"", "[3]", "[0,2]", "ab") == p + "tensor 'a': F4 shape [3] is not a whole number of bytes");

  // Offsets together.
  const std::string b_at = "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":";
  CHECK(read_error(file_of("{" + a + "," + entry("b", b_at + "[8,24]") + "}", std::string(24, '\0'))) ==
        p + "tensor 'b' with data_offsets [8, 24] overlaps tensor 'a' with data_offsets [0, 16]");
  CHECK(read_error(file_of("{" + a + "," + entry("b", b_at + "[20,36]") + "}", std::string(36, '\0'))) ==
        p + "tensor 'b' begins at byte 20 of the data, but the tensors before it end at byte 16: the tensors leave a "
            "hole in the data");
  CHECK(read_error(file_of("{" + entry("a", b_at + "[4,20]") + "}", std::string(20, '\0'))) ==
        p + "tensor 'a' begins at byte 4 of the data, but the tensors before it end at byte 0: the tensors leave a "
            "hole in the data");
  CHECK(read_error(file_of("{" + a + "}", std::string(14, '\0'))) ==
        p + "the tensors need 16 bytes of data but the file holds 14 after the header (truncated file)");
  CHECK(read_error(file_of("{" + a + "}", std::string(18, '\0'))) ==
        p + "the file has 2 bytes after the last tensor's data; safetensors forbids bytes that no tensor covers");

  // Metadata.
  CHECK(read_error(file_of("{\"__metadata__\":{\"k\":1}}")) ==
        p + "\"__metadata__\" maps 'k' to 1, not a string; safetensors metadata maps strings to strings");
  CHECK(read_error(file_of("{\"__metadata__\":[\"k\"]}")) ==
        p + "\"__metadata__\" is [\"k\"], not an object of strings");

  // Valid variants the reference reader accepts.
  eqx::SafetensorsFile ok = read_bytes(file_of(
      " \n{\"__metadata__\":null, \"z\" : {\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[4,8],\"extra\":1},"
      "\"e\":{\"dtype\":\"F64\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
      "\"y\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[0,4]}}\t\r\n  ",
      std::string("\x07\x00\x00\x00\xf9\xff\xff\xff", 8)));
  CHECK(names_of(ok) == std::vector<std::string>{"e", "y", "z"});
  CHECK(ok.metadata.empty());
  eqx_test::check<double>(ok.at("e"), {2, 0}, {});
  eqx_test::check<std::uint32_t>(ok.at("y"), {1}, {7u});
  eqx_test::check<int>(ok.at("z"), {}, {-7});
  CHECK(read_bytes(file_of("{}")).tensors.empty());
  // BOOL bytes other than 0/1 read as true.
  const std::string bools = file_of("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}",
                                    std::string("\x00\x02\xff", 3));
  eqx_test::check<bool>(read_bytes(bools).at("m"), {3}, {false, true, true});
}

TEST_CASE("mutated safetensors files never crash the reader", "[io][safetensors][fuzz]") {
  const std::string good = bytes_of(net(), {.metadata = kMetadata});
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  const std::string header = good.substr(8, n), data = good.substr(8 + n);
  const Net like = zeros_like(net());
  const char specials[] = "{}[]\",:0123456789-. e\\\xff";
  const char* numbers[] = {"0", "1", "3", "7", "16", "24", "95", "96", "-1", "2.5", "1e3", "4294967296",
                           "9223372036854775807", "18446744073709551615", "18446744073709551616", "\"4\"", "[]",
                           "null"};
  std::mt19937 rng(20240517);
  int rejected = 0, loaded = 0;
  const int rounds = 4000;
  for (int i = 0; i < rounds; ++i) {
    std::string bad;
    switch (i % 5) {
      case 0: bad = good.substr(0, rng() % good.size()); break;  // truncation
      case 1:                                                     // a flipped byte anywhere
        bad = good;
        bad[rng() % bad.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 2: {  // a burst of JSON punctuation in the header, length kept
        bad = good;
        for (int k = 0, m = 1 + static_cast<int>(rng() % 4); k < m; ++k)
          bad[8 + rng() % n] = specials[rng() % (sizeof(specials) - 1)];
        break;
      }
      case 3: {  // a number (or token) of the header replaced, the length field fixed up
        std::string h = header;
        std::size_t at = rng() % h.size();
        while (at < h.size() && !(h[at] >= '0' && h[at] <= '9')) ++at;
        std::size_t end = at;
        while (end < h.size() && h[end] >= '0' && h[end] <= '9') ++end;
        h.replace(at, end - at, numbers[rng() % std::size(numbers)]);
        bad = file_of(h, data);
        break;
      }
      default: {  // the length field off by a little or a lot, or a byte cut from / added to the header
        const std::uint64_t choices[] = {n - 1, n + 1, n + 8, n - 8, n + 95, rng() % (n * 2 + 1),
                                         std::uint64_t{rng()} << 32, ~std::uint64_t{0}};
        bad = le64(choices[rng() % std::size(choices)]) + header + data;
        if (rng() % 2) bad.erase(8 + rng() % n, 1);
        break;
      }
    }
    try {
      std::istringstream in(bad);
      Net m = eqx::load_safetensors(in, like);
      ++loaded;  // a changed data byte, or an edit that left a valid file
      CHECK(m.layers.at(0).weight.shape() == eqx::Shape{2, 3});
      std::istringstream again(bad);
      CHECK(eqx::read_safetensors(again).tensors.size() == 9);
    } catch (const eqx::Error&) {
      ++rejected;
    }
  }
  CHECK(rejected > rounds / 2);
  CHECK(loaded > 100);
  CHECK(loaded + rejected == rounds);
}

}  // namespace io_safetensors_test
