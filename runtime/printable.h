// Bytes from outside (file names, peer names, message fields) as they may appear in a log line or an
// error message: printable UTF-8 unchanged, every other byte as \xHH, a backslash as \\, and at most
// `max` input bytes shown (then "…").
#pragma once

#include <string>
#include <string_view>

namespace convoy {

std::string printable(std::string_view bytes, size_t max = 200);

}  // namespace convoy
