// Errors carry a kind that tells the caller what to do, and a message that names the file, field,
// op and values involved. Exceptions are used inside a process; process and network boundaries turn
// them into statuses.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace convoy {

enum class ErrorKind {
  kInvalidInput,  // the caller's data is wrong: archive, job file, tensor shape, message field
  kUnsupported,   // well-formed but outside what Convoy implements (an op, a dtype, a format)
  kIo,            // the file system or network failed
  kInternal,      // a broken invariant inside Convoy
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, Args&&... args) {
  throw Error(kind, str_cat(std::forward<Args>(args)...));
}

}  // namespace convoy

// Bad input: the message is built only when the check fails.
#define CONVOY_CHECK(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond)) ::convoy::fail(::convoy::ErrorKind::kInvalidInput, __VA_ARGS__); \
  } while (0)

#define CONVOY_CHECK_KIND(kind, cond, ...)                               \
  do {                                                                   \
    if (!(cond)) ::convoy::fail(::convoy::ErrorKind::kind, __VA_ARGS__); \
  } while (0)

// Broken invariant inside Convoy.
#define CONVOY_ASSERT(cond, ...)                                                                \
  do {                                                                                          \
    if (!(cond))                                                                                \
      ::convoy::fail(::convoy::ErrorKind::kInternal, __FILE__, ":", __LINE__, ": ", #cond, " ", \
                     ##__VA_ARGS__);                                                            \
  } while (0)
