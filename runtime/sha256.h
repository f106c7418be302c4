// SHA-256 (FIPS 180-4): program-cache keys and checksums, and the content hashes weights are
// cached under on workers. A 64-bit hash could collide by accident across a cluster's weights.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace convoy {

std::array<uint8_t, 32> sha256(std::string_view data);
inline std::array<uint8_t, 32> sha256(const void* data, size_t size) {
  return sha256(std::string_view(static_cast<const char*>(data), size));
}
// 64 lowercase hex digits of any byte string.
std::string hex_string(std::string_view bytes);

}  // namespace convoy
