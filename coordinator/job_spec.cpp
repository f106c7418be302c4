#include "coordinator/job_spec.h"

#include <filesystem>
#include <set>

#include "runtime/error.h"
#include "runtime/yaml_fields.h"

namespace convoy {

namespace {

using yaml::where;

std::string resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

std::string scalar_string(const std::string& file, const YAML::Node& node, const std::string& key) {
  CONVOY_CHECK(node.IsScalar(), where(file, node), ": '", key, "' must be a string (a path)");
  std::string s = node.as<std::string>();
  CONVOY_CHECK(!s.empty(), where(file, node), ": '", key, "' is empty");
  return s;
}

}  // namespace

JobSpec load_job_spec(const std::string& path) {
  CONVOY_CHECK_KIND(kIo, std::filesystem::is_regular_file(path), path, ": job file not found");
  YAML::Node root = yaml::load_file(path);
  CONVOY_CHECK(root.IsMap(), path,
               ": a job file must be a mapping with keys model, inputs, output, batch_size");
  static const std::set<std::string> kKeys = {"model",      "inputs",  "output",
                                              "batch_size", "workers", "overwrite"};
  for (const auto& kv : root) {
    CONVOY_CHECK(kv.first.IsScalar(), where(path, kv.first),
                 ": keys must be names (model, inputs, output, batch_size, workers, overwrite)");
    std::string key = kv.first.as<std::string>();
    CONVOY_CHECK(kKeys.count(key), where(path, kv.first), ": unknown key '", key,
                 "' (expected one of: model, inputs, output, batch_size, workers, overwrite)");
  }
  for (const char* key : {"model", "inputs", "output", "batch_size"})
    CONVOY_CHECK(root[key], path, ": missing required key '", key, "'");

  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  JobSpec spec;
  spec.job_file = path;
  spec.model = resolve(base, scalar_string(path, root["model"], "model"));
  spec.output = resolve(base, scalar_string(path, root["output"], "output"));

  YAML::Node inputs = root["inputs"];
  CONVOY_CHECK(inputs.IsSequence(), where(path, inputs), ": 'inputs' must be a list of .npy paths");
  CONVOY_CHECK(inputs.size() > 0, where(path, inputs), ": 'inputs' is empty");
  for (const auto& item : inputs) spec.inputs.push_back(resolve(base, scalar_string(path, item, "inputs")));

  YAML::Node bs = root["batch_size"];
  CONVOY_CHECK(bs.IsScalar(), where(path, bs), ": 'batch_size' must be a positive integer");
  std::optional<int64_t> batch_size = yaml::scalar_as<int64_t>(bs);
  CONVOY_CHECK(batch_size, where(path, bs), ": 'batch_size' must be a positive integer, not '",
               bs.as<std::string>(), "'");
  spec.batch_size = *batch_size;
  CONVOY_CHECK(spec.batch_size > 0, where(path, bs), ": 'batch_size' must be a positive integer, not ",
               spec.batch_size);
  if (YAML::Node w = root["workers"]) {
    std::optional<int64_t> n = w.IsScalar() ? yaml::scalar_as<int64_t>(w) : std::nullopt;
    CONVOY_CHECK(
        n && *n >= 0 && *n <= 65536, where(path, w),
        ": 'workers' must be an integer in [0, 65536] (the most workers the job may hold; 0: the cluster's "
        "default), not '",
        yaml::text_of(w), "'");
    spec.workers = static_cast<uint32_t>(*n);
  }
  if (YAML::Node o = root["overwrite"]) {
    std::optional<bool> b = o.IsScalar() ? yaml::scalar_as<bool>(o) : std::nullopt;
    CONVOY_CHECK(b.has_value(), where(path, o),
                 ": 'overwrite' must be true or false (replace outputs that exist)");
    spec.overwrite = *b;
  }
  return spec;
}

}  // namespace convoy
