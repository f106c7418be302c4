// Bytes from a file or a message made safe to put in an error message or a log line: a corrupted
// archive or a hostile peer must not write terminal escapes, raw control bytes or broken UTF-8 into
// what an operator reads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace convoy {

// At most this many bytes of the input are shown; more is cut there and "…" appended.
inline constexpr size_t kPrintableMaxBytes = 200;

// `bytes` with every valid UTF-8 sequence of a printable character kept as it is, and every other
// byte written as `\xHH` (two lowercase hex digits): C0 controls (newline and tab included), DEL, C1
// controls (U+0080..U+009F), bytes of an invalid, overlong, surrogate (U+D800..U+DFFF), too large
// (over U+10FFFF) or truncated sequence, and lone continuation bytes. A backslash is written `\\`,
// so the output can be read back unambiguously. Only the first `max_bytes` bytes of the input are
// shown (a sequence that straddles the limit is escaped); when more follow, "…" (U+2026) is
// appended.
std::string printable(std::string_view bytes, size_t max_bytes = kPrintableMaxBytes);

}  // namespace convoy
