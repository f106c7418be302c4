#include "coordinator/path_policy.h"

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include "runtime/error.h"

namespace convoy {

namespace fs = std::filesystem;

namespace {

// realpath() of the deepest folder of `path` that exists, with the components below it appended.
// `path` is absolute and lexically normal ("..", "." removed), so a missing tail cannot climb out.
fs::path resolve(const fs::path& path) {
  fs::path p = path.lexically_normal();
  std::vector<fs::path> tail;
  while (true) {
    char buf[PATH_MAX];
    if (::realpath(p.c_str(), buf)) {
      fs::path out(buf);
      for (auto it = tail.rbegin(); it != tail.rend(); ++it) out /= *it;
      return out;
    }
    if (!p.has_parent_path() || p.parent_path() == p) return path;  // nothing resolves: "/" at least does
    tail.push_back(p.filename());
    p = p.parent_path();
  }
}

bool inside(const fs::path& p, const fs::path& root) {
  auto r = root.begin(), x = p.begin();
  for (; r != root.end(); ++r, ++x) {
    if (r->empty()) continue;  // a trailing separator
    if (x == p.end() || *x != *r) return false;
  }
  return true;
}

}  // namespace

std::string confine_path(const std::string& path, const std::vector<std::string>& roots,
                         const std::string& where, const std::string& what) {
  CONVOY_CHECK(!path.empty() && path[0] == '/', where, ": ", what, " '", path, "' must be an absolute path");
  fs::path resolved = resolve(path);
  std::string list;
  for (const std::string& root : roots) {
    if (inside(resolved, resolve(root))) return resolved.string();
    list += (list.empty() ? "" : ", ") + root;
  }
  fail(ErrorKind::kInvalidInput, where, ": ", what, " ", path, " is outside the allowed roots (", list, ")");
}

void check_outputs_absent(const std::string& folder, bool overwrite, const std::string& where) {
  if (overwrite) return;
  static const std::regex kOutput("output_[0-9]+\\.npy");
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (std::regex_match(it->path().filename().string(), kOutput))
      fail(ErrorKind::kInvalidInput, where, ": output ", it->path().string(),
           " exists already; a job never replaces outputs unless it says `overwrite: true`");
}

}  // namespace convoy
