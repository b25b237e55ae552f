#pragma once
// Reading and writing: .npy records and Equinox-format serialisation.
// Kept out of <eqx/eqx.hpp> (it brings <fstream> and <filesystem>).
// safetensors files are <eqx/io/safetensors.hpp>, included on its own: it
// brings nlohmann-json, which most programs that save models do not need.

#include "eqx/io/npy.hpp"
#include "eqx/io/serialise.hpp"
