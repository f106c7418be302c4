#include "runtime/printable.h"

#include <cstdint>

namespace convoy {

namespace {

// The length of the valid UTF-8 sequence of a printable character at the start of `s`, or 0 when
// its first byte must be escaped (RFC 3629: shortest form only, no surrogates, at most U+10FFFF).
size_t printable_sequence(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b0 = byte(0);
  if (b0 < 0x80) return b0 >= 0x20 && b0 != 0x7f ? 1 : 0;
  size_t len;
  uint32_t cp, min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;  // a continuation byte on its own, or 0xf8..0xff
  }
  if (s.size() < len) return 0;  // truncated
  for (size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;                              // overlong, too large, surrogate
  if (cp >= 0x80 && cp <= 0x9f) return 0;  // C1 controls
  return len;
}

}  // namespace

std::string printable(std::string_view bytes, size_t max_bytes) {
  bool cut = bytes.size() > max_bytes;
  std::string_view shown = bytes.substr(0, max_bytes);
  std::string out;
  out.reserve(shown.size() + 8);
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < shown.size();) {
    if (shown[i] == '\\') {
      out += "\\\\";
      ++i;
      continue;
    }
    size_t n = printable_sequence(shown.substr(i));
    if (n > 0) {
      out.append(shown.substr(i, n));
      i += n;
      continue;
    }
    uint8_t b = static_cast<uint8_t>(shown[i++]);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  if (cut) out += "\u2026";
  return out;
}

}  // namespace convoy
