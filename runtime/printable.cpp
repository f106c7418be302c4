#include "runtime/printable.h"

namespace convoy {

namespace {

// The length of the valid, printable UTF-8 sequence at `s[i]`, or 0.
size_t sequence(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c >= 0x20 && c < 0x7f) return 1;
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;  // overlong
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;                                           // surrogates
  if (cp < 0xa0) return 0;                                                              // C1 controls
  return n;
}

}  // namespace

std::string printable(std::string_view bytes, size_t max) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  for (; i < bytes.size() && i < max;) {
    if (bytes[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    if (size_t n = sequence(bytes, i)) {
      out.append(bytes.substr(i, n));
      i += n;
      continue;
    }
    auto c = static_cast<unsigned char>(bytes[i++]);
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  if (i < bytes.size()) out += "…";
  return out;
}

}  // namespace convoy
