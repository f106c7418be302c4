// The OpenCL C sources of opencl/kernels/*.cl, embedded at build time (embed_kernels.cmake writes
// embedded_kernels.cpp into the build folder), so a binary runs without its source tree.
#pragma once

#include <string_view>
#include <vector>

namespace convoy::opencl {

// The text of a kernel file by its name ("elementwise.cl"); throws kInternal naming the file and the
// embedded files when there is no such file.
std::string_view kernel_source(std::string_view file_name);
// Names of every embedded file.
std::vector<std::string_view> kernel_files();

}  // namespace convoy::opencl
