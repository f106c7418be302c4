#include "runtime/yaml_fields.h"

#include "runtime/error.h"

namespace convoy::yaml {

std::string where(const std::string& file, const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? file + ":" + std::to_string(mark.line + 1) : file;
}

namespace {

template <typename Load>
YAML::Node checked(const std::string& file, Load&& load) {
  try {
    return load();
  } catch (const YAML::Exception& e) {
    fail(ErrorKind::kInvalidInput, file, ":", e.mark.line + 1, ": invalid YAML: ", e.msg);
  }
}

}  // namespace

YAML::Node load(const std::string& text, const std::string& file) {
  return checked(file, [&] { return YAML::Load(text); });
}

YAML::Node load_file(const std::string& path) {
  return checked(path, [&] { return YAML::LoadFile(path); });
}

std::string text_of(const YAML::Node& node) {
  return node.IsScalar() ? node.as<std::string>() : std::string(node.IsSequence() ? "a list" : "a mapping");
}

}  // namespace convoy::yaml
