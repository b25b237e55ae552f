#pragma once
// MNIST-style image datasets (MNIST, Fashion-MNIST, KMNIST): the four IDX
// files of a dataset folder read into images and labels, checked against
// each other.
//
// Fashion-MNIST comes from Debian's dataset-fashion-mnist package, in
// /usr/share/datasets/fashion-mnist; any folder holding the standard file
// names (train-images-idx3-ubyte.gz, ...; gzip or not) works.
//
// Needs zlib: link eqx::data (CMake), or -lz.

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include "eqx/core/array.hpp"
#include "eqx/data/idx.hpp"
#include "eqx/io/npy.hpp"
#include "eqx/ops/shape.hpp"

namespace eqx::data {

/// Images with one integer label each.
struct LabelledImages {
  Array images;  ///< f32[n, 1, rows, cols], pixels in [0, 1]
  Array labels;  ///< i32[n], class indices
};

/// Where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
inline const std::filesystem::path fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's ten classes, by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

namespace detail {

/// `<stem>.gz` if it exists, else `<stem>` (some copies are stored unzipped).
inline std::filesystem::path idx_file(const std::filesystem::path& dir, const std::string& stem) {
  std::filesystem::path gz = dir / (stem + ".gz");
  return std::filesystem::exists(gz) || !std::filesystem::exists(dir / stem) ? gz : dir / stem;
}

}  // namespace detail

/// The "train" or "test" split of an MNIST-style dataset folder.
/// Usage: `auto test = eqx::data::load_mnist("/data/mnist", "test");`
inline LabelledImages load_mnist(const std::filesystem::path& dir, std::string_view split) {
  if (split != "train" && split != "test")
    throw ValueError("eqx::data::load_mnist: split must be \"train\" or \"test\", got \"" + std::string(split) + "\"");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::filesystem::path images_file = detail::idx_file(dir, prefix + "-images-idx3-ubyte");
  const std::filesystem::path labels_file = detail::idx_file(dir, prefix + "-labels-idx1-ubyte");
  Array images = read_idx(images_file, float32, {.scale = 1.0 / 255});
  Array labels = read_idx(labels_file, int32);
  if (images.ndim() != 3)
    throw IOError("eqx::data::load_mnist: " + images_file.string() + " holds shape " + images.shape().str() +
                  ", not [n, rows, cols] images; is it a labels file?");
  if (labels.ndim() != 1 || labels.shape()[0] != images.shape()[0])
    throw IOError("eqx::data::load_mnist: " + labels_file.string() + " holds shape " + labels.shape().str() + " but " +
                  images_file.string() + " holds " + std::to_string(images.shape()[0]) +
                  " images; the two files must come from the same split");
  const Shape& s = images.shape();
  return {reshape(images, {s[0], 1, s[1], s[2]}), labels};
}

/// Fashion-MNIST's "train" (60,000 images) or "test" (10,000) split, from
/// Debian's dataset-fashion-mnist package unless `dir` says otherwise.
/// Usage: `auto [images, labels] = eqx::data::load_fashion_mnist("train");`
inline LabelledImages load_fashion_mnist(std::string_view split, const std::filesystem::path& dir = fashion_mnist_dir) {
  try {
    return load_mnist(dir, split);
  } catch (const IOError& e) {
    throw IOError(std::string(e.what()) +
                  "; Fashion-MNIST comes from Debian's dataset-fashion-mnist package (apt-get install "
                  "dataset-fashion-mnist), or pass the folder holding its four IDX files");
  }
}

}  // namespace eqx::data
