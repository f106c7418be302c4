// Reading settings files with yaml-cpp: the pieces the cluster file, the worker config and the job
// file parsers share (positions as FILE:LINE, loading with the same "invalid YAML" error, scalars
// read without letting a YAML exception escape). Each parser keeps its own messages.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace convoy::yaml {

// "FILE:LINE" of `node` (1-based), or FILE when the node has no position.
std::string where(const std::string& file, const YAML::Node& node);

// The document in `text` (read from `file`) / in the file `path`. Malformed YAML is
// convoy::Error(kInvalidInput) "FILE:LINE: invalid YAML: ...".
YAML::Node load(const std::string& text, const std::string& file);
YAML::Node load_file(const std::string& path);

// A scalar's text, else "a list" or "a mapping", for error messages.
std::string text_of(const YAML::Node& node);

// The scalar `node` read as T; nullopt when it is not a scalar or its text is not a T.
template <typename T>
std::optional<T> scalar_as(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

}  // namespace convoy::yaml
