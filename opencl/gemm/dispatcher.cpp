// The GEMM dispatcher: measures every provider once per shape class at plan time, remembers the fastest
// (in memory and in the cache folder) and dispatches to it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <ostream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "opencl/embedded_kernels.h"
#include "opencl/gemm/gemm.h"
#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {
namespace {

// Measuring a shape class: at least kMinRounds rounds of one run per candidate, more (up to kMaxRounds)
// until kEnoughSeconds have passed; after the first round, a candidate kHopeless times slower than the
// leader runs no more.
constexpr int kMinRounds = 2, kMaxRounds = 5;
constexpr double kEnoughSeconds = 0.3, kHopeless = 3.0;

// Every field of a GemmArgs but the buffers: what a provider's warm-up depends on (launch geometry,
// packing buffer size, CLBlast's path).
std::string exact_shape(const GemmArgs& a, std::string_view provider) {
  const Epilogue& e = a.epilogue;
  return str_cat(provider, ":", static_cast<int>(a.trans_a), static_cast<int>(a.trans_b), ":", a.m, ",", a.n,
                 ",", a.k, ":", a.alpha, ",", a.beta, ":", a.a_offset, ",", a.lda, ",", a.b_offset, ",",
                 a.ldb, ",", a.c_offset, ",", a.ldc, ":", a.batch_count, ",", a.a_stride, ",", a.b_stride,
                 ",", a.c_stride, ":", static_cast<int>(e.bias_axis), ",", e.bias_offset, ",",
                 static_cast<int>(e.activation), ",", e.min_value, ",", e.max_value);
}

// Stable 64-bit FNV-1a, for the choices file's header: choices measured with another version of the
// tiled kernel or other CLBlast parameters are not trusted.
std::string source_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

}  // namespace

struct GemmDispatcher::State {
  struct Choice {
    std::string key;
    std::string provider;
    std::vector<ProviderMeasurement> measurements;
  };

  ClTarget target;
  std::filesystem::path cache_dir;
  std::unique_ptr<ProgramSource> programs;
  std::unique_ptr<TiledProvider> tiled, tiled_narrow;
  std::unique_ptr<ClblastProvider> clblast;
  std::vector<GemmProvider*> all;  // in measuring order; `tiled` first: it also serves unwarmed shapes
  std::string header;              // first lines of the choices file: what the choices are valid for
  mutable std::mutex mutex;
  std::unordered_map<uint64_t, Choice> choices;
  // Exact shapes (everything but the buffers) already warmed with their class's choice: a plan runs the
  // same convolution shape several times, and warming one runs it once more on scratch operands.
  std::unordered_set<std::string> warmed;
  std::atomic<size_t> unwarmed{0};

  GemmProvider& by_name(std::string_view name) {
    for (GemmProvider* provider : all)
      if (provider->name() == name) return *provider;
    fail(ErrorKind::kInvalidInput, "gemm: unknown provider '", name,
         "' (known: tiled, tiled_narrow, clblast)");
  }

  // File format: the header, then "<packed class>\t<class key>\t<provider>" and "\t<provider>=<seconds>"
  // per measurement. Adds the file's choices for classes not yet in `choices` (a class this process
  // has already planned with keeps its provider: enqueue() must find it warmed).
  void load_choices() {
    std::string text;
    if (!read_file(choices_path(cache_dir, target.device), text) || text.rfind(header, 0) != 0) return;
    std::istringstream in(text.substr(header.size()));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      uint64_t packed = 0;
      Choice choice;
      if (!(fields >> packed >> choice.key >> choice.provider)) continue;
      if (std::none_of(all.begin(), all.end(), [&](GemmProvider* p) { return p->name() == choice.provider; }))
        continue;
      choices.try_emplace(packed, std::move(choice));
    }
  }

  // Several processes on one device (workers of one host, a worker and `run --workers 0`) must make
  // the same choice for a class, or the same stage would sum in different orders in different
  // processes. Under an exclusive lock on the cache folder's lock file, the first choice stored for a
  // class is the one every process adopts: `fn` runs with the file's choices merged in.
  template <typename Fn>
  void with_choices_file_locked(Fn&& fn) {
    const std::filesystem::path lock_path = choices_path(cache_dir, target.device).string() + ".lock";
    std::error_code ec;
    std::filesystem::create_directories(lock_path.parent_path(), ec);
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::flock(fd, LOCK_EX);
    try {
      load_choices();
      fn();
    } catch (...) {
      if (fd >= 0) ::close(fd);  // closing releases the lock
      throw;
    }
    if (fd >= 0) ::close(fd);
  }

  void store_choices() const {
    std::ostringstream out;
    out << header;
    for (const auto& [packed, choice] : choices) {
      out << packed << "\t" << choice.key << "\t" << choice.provider;
      for (const auto& m : choice.measurements) out << "\t" << m.provider << "=" << m.seconds;
      out << "\n";
    }
    write_file_atomically(choices_path(cache_dir, target.device), out.str());
  }
};

GemmDispatcher::GemmDispatcher(Device& device, std::filesystem::path cache_dir)
    : GemmDispatcher(target_of(device), std::move(cache_dir)) {}

GemmDispatcher::GemmDispatcher(const ClTarget& target, std::filesystem::path cache_dir)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.target = target;
  s.cache_dir = cache_dir.empty() ? default_cache_dir() : std::move(cache_dir);
  s.programs = std::make_unique<ProgramSource>(target);
  const TiledConfig config = load_tiled_config(s.cache_dir, target.device);
  s.tiled = std::make_unique<TiledProvider>(*s.programs, config);
  s.tiled_narrow = std::make_unique<TiledProvider>(*s.programs, config.narrowed(), "tiled_narrow");
  const ClblastParameters tuned = load_clblast_parameters(s.cache_dir, target.device);
  std::string tuned_text;
  for (const auto& [kernel, values] : tuned)
    for (const auto& [name, value] : values) tuned_text += str_cat(kernel, ".", name, "=", value, " ");
  s.clblast = std::make_unique<ClblastProvider>(*s.programs);
  s.all = {s.tiled.get(), s.tiled_narrow.get(), s.clblast.get()};
  // Choices are only valid for the kernels and parameters they were measured with.
  s.header =
      str_cat("# ", device_key(target.device), "\n# tiled ", config.text(), " source ",
              source_hash(kernel_source("gemm_tiled.cl")), "\n# clblast ", source_hash(tuned_text), "\n");
  s.load_choices();
}

GemmDispatcher::~GemmDispatcher() = default;

void GemmDispatcher::warm_up(const GemmArgs& shape) {
  validate(shape, /*check_buffers=*/false);
  State& s = *state_;
  const ShapeClass shape_class = ShapeClass::of(shape);
  std::lock_guard lock(s.mutex);
  if (auto it = s.choices.find(shape_class.packed()); it != s.choices.end()) {
    if (!s.warmed.insert(exact_shape(shape, it->second.provider)).second) return;
    ScratchOperands scratch(s.target, shape);
    s.by_name(it->second.provider).warm_up(scratch.args());
    return;
  }
  // Another process may have measured this class since this one loaded the file.
  s.with_choices_file_locked([] {});
  if (auto it = s.choices.find(shape_class.packed()); it != s.choices.end()) {
    if (!s.warmed.insert(exact_shape(shape, it->second.provider)).second) return;
    ScratchOperands scratch(s.target, shape);
    s.by_name(it->second.provider).warm_up(scratch.args());
    return;
  }
  ScratchOperands scratch(s.target, shape);

  // Warm every candidate (compiles kernels, sizes buffers), then time them in interleaved rounds
  // (A B C, A B C, ...) keeping each one's fastest run: a neighbour that takes the CPU for a while then
  // slows the candidates alike instead of whichever happened to be running.
  std::vector<GemmProvider*> candidates;
  for (GemmProvider* provider : s.all) {
    try {
      provider->warm_up(scratch.args());
      candidates.push_back(provider);
    } catch (const Error&) {
      // CLBlast can reject shapes or fail to build on some drivers; our kernels then serve the class.
      if (provider != s.clblast.get()) throw;
    }
  }
  std::vector<double> fastest(candidates.size(), 1e30);
  double elapsed = 0;
  for (int round = 0; round < kMaxRounds; ++round) {
    const double leader = *std::min_element(fastest.begin(), fastest.end());
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (round > 0 && fastest[i] > kHopeless * leader) continue;  // clearly losing: spare the time
      const double seconds = time_provider(*candidates[i], scratch.args(), s.target.queue, 1, true);
      fastest[i] = std::min(fastest[i], seconds);
      elapsed += seconds;
    }
    if (round + 1 >= kMinRounds && elapsed > kEnoughSeconds) break;
  }
  State::Choice choice;
  choice.key = shape_class.key();
  for (size_t i = 0; i < candidates.size(); ++i)
    choice.measurements.push_back({std::string(candidates[i]->name()), fastest[i]});
  choice.provider =
      choice.measurements[std::min_element(fastest.begin(), fastest.end()) - fastest.begin()].provider;
  s.with_choices_file_locked([&] {
    // Another process may have stored this class while we measured: its choice stands.
    auto [it, inserted] = s.choices.try_emplace(shape_class.packed(), std::move(choice));
    if (inserted) s.store_choices();
    s.warmed.insert(exact_shape(shape, it->second.provider));
    if (!inserted) s.by_name(it->second.provider).warm_up(scratch.args());
  });
}

void GemmDispatcher::enqueue(const GemmArgs& args, cl_event* event) {
  State& s = *state_;
  GemmProvider* provider = s.tiled.get();
  {
    std::lock_guard lock(s.mutex);
    if (auto it = s.choices.find(ShapeClass::of(args).packed()); it != s.choices.end()) {
      provider = &s.by_name(it->second.provider);
    } else {
      ++s.unwarmed;
    }
  }
  provider->enqueue(args, event);
}

std::string GemmDispatcher::choice(const ShapeClass& shape_class) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->choices.find(shape_class.packed());
  return it == state_->choices.end() ? std::string() : it->second.provider;
}

std::vector<ProviderMeasurement> GemmDispatcher::measurements(const ShapeClass& shape_class) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->choices.find(shape_class.packed());
  return it == state_->choices.end() ? std::vector<ProviderMeasurement>() : it->second.measurements;
}

size_t GemmDispatcher::unwarmed_calls() const { return state_->unwarmed; }

GemmProvider& GemmDispatcher::provider(std::string_view name) { return state_->by_name(name); }

void GemmDispatcher::forget_choices() {
  std::lock_guard lock(state_->mutex);
  state_->choices.clear();
  state_->warmed.clear();
}

void tune(const ClTarget& target, const std::filesystem::path& cache_dir, const TuneOptions& options,
          std::ostream& log) {
  log << "tuning GEMM for " << device_key(target.device) << " into " << cache_dir.string() << "\n";
  if (options.tiled) {
    const TiledConfig config = tune_tiled(target, log);
    write_file_atomically(tiled_config_path(cache_dir, target.device),
                          str_cat("# ", device_key(target.device), "\n", config.text(), "\n"));
    log << "tiled kernel: " << config.text() << "\n";
  }
  if (options.clblast) {
    const ClblastParameters parameters = tune_clblast_kernels(
        target, options, log,
        [&](const ClblastParameters& so_far) { store_clblast_parameters(cache_dir, target.device, so_far); });
    store_clblast_parameters(cache_dir, target.device, parameters);
    log << "CLBlast: stored parameters for " << parameters.size() << " kernels\n";
  }
  std::error_code ec;
  std::filesystem::remove(choices_path(cache_dir, target.device), ec);
}

int run_tune_command(Device& device, std::ostream& log) {
  try {
    tune(target_of(device), default_cache_dir(), TuneOptions{}, log);
    return 0;
  } catch (const std::exception& e) {
    log << "convoy-worker --tune failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace convoy::opencl::gemm
