// The two GEMM providers and what they share; internal to opencl/gemm (tests and the benchmark use it
// to drive each provider on its own).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "opencl/gemm/gemm.h"

namespace convoy::opencl::gemm {

// The programs and queue the providers share: a ClTarget whose builder must be set.
class ProgramSource {
 public:
  explicit ProgramSource(ClTarget target);
  cl_program get(std::string_view kernel_file, const std::string& options) {
    return target_.build_program(kernel_file, options);
  }
  const ClTarget& target() const { return target_; }

 private:
  ClTarget target_;
};

// Scratch device buffers sized for one GemmArgs shape (operands, C, bias), filled with small values;
// used to warm up and measure a shape without touching the caller's buffers.
class ScratchOperands {
 public:
  ScratchOperands(const ClTarget& target, const GemmArgs& shape);
  ~ScratchOperands();
  ScratchOperands(const ScratchOperands&) = delete;
  ScratchOperands& operator=(const ScratchOperands&) = delete;
  const GemmArgs& args() const { return args_; }

 private:
  GemmArgs args_;
  std::vector<cl_mem> buffers_;
};

// Minimal elements each operand spans: the sizes a caller's buffers must have (in floats).
size_t a_extent(const GemmArgs& args);
size_t b_extent(const GemmArgs& args);
size_t c_extent(const GemmArgs& args);
size_t bias_extent(const GemmArgs& args);

// Tile sizes of the tiled kernel: compile-time defines, chosen per device by `tune_tiled`.
struct TiledConfig {
  int tm = 8, tnv = 2;  // gemm_nvec: tm rows × 16·tnv columns per work-item
  // A second gemm_nvec tile, served as its own provider ("tiled_narrow"): taller and narrower tiles
  // halve the B traffic per k step, which wins where B is not packed (C with few rows, small K).
  int narrow_tm = 16, narrow_tnv = 1;
  int ktm = 4, ktn = 4;           // gemm_kvec: ktm rows × ktn columns per work-item
  size_t local0 = 1, local1 = 1;  // work-group shape; 1×1 on CPUs, where one work-item fills the SIMD
  // gemm_nvec packs B into panels first when C has at least this many rows (P, the rows of the product it
  // computes): the copy costs one pass over B and pays off once B is reused by many row tiles.
  size_t pack_min_rows = 256;
  size_t nt_pack_min_rows = 32;  // the same for NT products, which otherwise run gemm_kvec

  std::string build_options() const;
  std::string text() const;      // "tm=8 tnv=2 narrow=16x1 ktm=4 ktn=4 local=1x1 pack=256 ntpack=32"
  TiledConfig narrowed() const;  // this config with the narrow tile as its gemm_nvec tile
  static TiledConfig parse(std::string_view text);  // throws kInvalidInput naming the bad field
  static TiledConfig default_for(cl_device_id device);
  friend bool operator==(const TiledConfig&, const TiledConfig&) = default;
};

class TiledProvider final : public GemmProvider {
 public:
  TiledProvider(ProgramSource& programs, TiledConfig config, std::string name = "tiled");
  ~TiledProvider() override;
  std::string_view name() const override { return name_; }
  void warm_up(const GemmArgs& runnable) override;
  void enqueue(const GemmArgs& args, cl_event* event = nullptr) override;
  const TiledConfig& config() const { return config_; }

 private:
  // How one GemmArgs maps onto the kernels: see plan() in tiled_provider.cpp.
  struct Launch {
    bool kvec = false, pack = false, swap = false;
    size_t p = 0, q = 0;
    cl_mem x = nullptr;
    size_t x_offset = 0, x_si = 0, x_sk = 0, x_batch = 0;
    cl_mem y = nullptr;
    size_t y_offset = 0, y_sk = 0, y_sj = 0, y_batch = 0, y_batches = 1;
    size_t c_si = 0, c_sj = 0;
    size_t panel_floats = 0;  // one batch entry of packed Y
  };
  Launch plan(const GemmArgs& args) const;
  void ensure_kernels();
  void ensure_pack_buffer(size_t bytes);
  ProgramSource& programs_;
  TiledConfig config_;
  std::string name_;
  std::mutex mutex_;
  cl_kernel nvec_ = nullptr;
  cl_kernel kvec_ = nullptr;
  cl_kernel pack_b_ = nullptr;
  cl_kernel pack_bt_ = nullptr;
  cl_mem pack_ = nullptr;  // packed B, grown at warm-up to what the warmed shapes need
  size_t pack_bytes_ = 0;
};

// CLBlast's GEMM, followed by the gemm_epilogue kernel when an epilogue is requested. Keeps one
// temporary buffer, grown at warm-up to what the warmed shapes need, so that enqueue never allocates.
class ClblastProvider final : public GemmProvider {
 public:
  explicit ClblastProvider(ProgramSource& programs);
  ~ClblastProvider() override;
  std::string_view name() const override { return "clblast"; }
  void warm_up(const GemmArgs& runnable) override;
  void enqueue(const GemmArgs& args, cl_event* event = nullptr) override;

 private:
  size_t temp_size(const GemmArgs& args);
  ProgramSource& programs_;
  std::mutex mutex_;
  cl_kernel epilogue_ = nullptr;
  cl_mem temp_ = nullptr;
  size_t temp_bytes_ = 0;
  std::unordered_map<std::string, size_t> temp_sizes_;  // per exact shape, filled at warm-up
};

// Tuned parameters, per CLBlast kernel name ("Xgemm", "XgemmDirect", "Copy", ...).
using ClblastParameters = std::map<std::string, std::map<std::string, size_t>>;

// Files in the cache folder, one set per device (name derived from device_key).
std::filesystem::path clblast_parameters_path(const std::filesystem::path& cache_dir, cl_device_id device);
std::filesystem::path tiled_config_path(const std::filesystem::path& cache_dir, cl_device_id device);
std::filesystem::path choices_path(const std::filesystem::path& cache_dir, cl_device_id device);

// Reads the stored parameters (empty when none, or when stored for another device/driver) and applies
// them with clblast::OverrideParameters; returns what was applied.
ClblastParameters load_clblast_parameters(const std::filesystem::path& cache_dir, cl_device_id device);
// Runs CLBlast's tuners for the kernels SGEMM uses: Xgemm (the indirect path, after Copy/Pad/Transpose/
// Padtranspose prepare the operands) and XgemmDirect (small shapes). `progress` receives everything
// tuned so far after each kernel, so a long run interrupted late keeps what it found.
ClblastParameters tune_clblast_kernels(const ClTarget& target, const TuneOptions& options, std::ostream& log,
                                       const std::function<void(const ClblastParameters&)>& progress = {});
void store_clblast_parameters(const std::filesystem::path& cache_dir, cl_device_id device,
                              const ClblastParameters& parameters);

// Measures candidate tile configurations on a few shapes; returns the fastest.
TiledConfig tune_tiled(const ClTarget& target, std::ostream& log);
TiledConfig load_tiled_config(const std::filesystem::path& cache_dir, cl_device_id device);

// Seconds of one enqueue+finish of `provider` on `args`: the minimum over `runs` (after one untimed run
// unless `already_warm`). The minimum, not the median: on a shared machine noise only ever adds time.
double time_provider(GemmProvider& provider, const GemmArgs& args, cl_command_queue queue, int runs,
                     bool already_warm = false);

// Whole-file helpers for the cache folder: written to a temporary name and renamed, so a reader never
// sees half a file and two writers never interleave.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents);
bool read_file(const std::filesystem::path& path, std::string& contents);

}  // namespace convoy::opencl::gemm
