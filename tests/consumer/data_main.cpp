// A downstream use of eqx::data (zlib through the exported target): write a
// gzip IDX file of three bytes and read it back; their sum is 6.
#include <eqx/data.hpp>
#include <eqx/eqx.hpp>

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>

int main() {
  const auto file = std::filesystem::temp_directory_path() / "eqx_consumer_data.idx.gz";
  const unsigned char idx[] = {0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3};  // u8[3] = {1, 2, 3}
  gzFile out = gzopen(file.c_str(), "wb");
  if (!out || gzwrite(out, idx, sizeof idx) != static_cast<int>(sizeof idx) || gzclose(out) != Z_OK) return 2;
  const int total = eqx::sum(eqx::data::read_idx(file)).item<std::int32_t>();
  std::filesystem::remove(file);
  std::printf("data %d\n", total);
  return total == 6 ? 0 : 1;
}
