// The GEMM dispatcher: every matrix product on an OpenCL device (linear, matmul, bmm, attention,
// convolution as im2col+GEMM, 1x1 convolution) goes through one GemmDispatcher per device.
//
// Two providers compute the same thing: CLBlast (with parameters tuned for the device once
// `convoy-worker --tune` has stored them) and our own register-tiled kernels
// (opencl/kernels/gemm_tiled.cl), the latter with two tile shapes ("tiled" and "tiled_narrow") that
// the dispatcher treats as separate candidates. At plan time, `warm_up` measures every candidate once
// per shape class and remembers the fastest, in memory and in the cache folder; `enqueue` then only
// dispatches. Nothing is measured, compiled or allocated inside `enqueue` for a shape class that was
// warmed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "opencl/cl_check.h"

namespace convoy::opencl {

class Device;

namespace gemm {

// The raw handles the GEMM code needs. `target_of(Device&)` fills it from a Device (its context, its
// in-order queue and its on-disk program cache); tests and the benchmark may also fill it by hand.
struct ClTarget {
  cl_context context = nullptr;
  cl_device_id device = nullptr;
  cl_command_queue queue = nullptr;  // in-order
  // Builds (or loads from a cache) a program from one of the embedded kernel files, by file name
  // ("gemm_tiled.cl"), with build options; the program stays owned by the builder. Required.
  std::function<cl_program(std::string_view kernel_file, const std::string& options)> build_program;
};
ClTarget target_of(Device& device);

// "<device name> | <driver version> | <platform name>": what persisted choices and tuned parameters are
// keyed by, so a driver upgrade measures again.
std::string device_key(cl_device_id device);

enum class Transpose : uint8_t { kNo, kYes };

// Applied to every element after the product, in this order: v = alpha·op(A)·op(B) + beta·C; v += bias;
// C = activation(v). Matches PyTorch's linear/conv followed by the activation module.
// The numeric values are shared with opencl/kernels/gemm_tiled.cl.
enum class Activation : uint8_t {
  kIdentity = 0,
  kRelu = 1,
  kRelu6 = 2,
  kHardtanh = 3,  // clamp(v, min_value, max_value)
  kGelu = 4,      // exact: 0.5·v·(1 + erf(v/√2)), PyTorch's approximate='none'
  kGeluTanh = 5,  // PyTorch's approximate='tanh'
  kSilu = 6,
  kHardswish = 7,
  kSigmoid = 8,
};
std::string_view activation_name(Activation activation);

enum class BiasAxis : uint8_t {
  kNone = 0,
  kAlongN = 1,  // bias[j] added to C[i][j]: linear (rows are samples, columns are output features)
  kAlongM = 2,  // bias[i] added to C[i][j]: convolution as im2col GEMM (rows are output channels)
};

struct Epilogue {
  BiasAxis bias_axis = BiasAxis::kNone;
  cl_mem bias = nullptr;   // float32; length N (kAlongN) or M (kAlongM); shared by all batch entries
  size_t bias_offset = 0;  // in elements
  Activation activation = Activation::kIdentity;
  float min_value = 0.0f;  // kHardtanh only
  float max_value = 0.0f;

  bool empty() const { return bias_axis == BiasAxis::kNone && activation == Activation::kIdentity; }
};

// Row-major float32 GEMM on device buffers, strided-batched:
//   for b in [0, batch_count): C_b[M×N] = epilogue(alpha·op(A_b)·op(B_b) + beta·C_b)
// where X_b starts at x_offset + b·x_stride elements. op(A) is M×K: A is M×K with leading dimension
// lda ≥ K, or (kYes) K×M with lda ≥ M. op(B) is K×N likewise. ldc ≥ N. With beta == 0, C is not read
// (NaN in C does not propagate), as in BLAS. M, N, K ≥ 1.
struct GemmArgs {
  Transpose trans_a = Transpose::kNo;
  Transpose trans_b = Transpose::kNo;
  size_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
  cl_mem a = nullptr;
  size_t a_offset = 0, lda = 0;
  cl_mem b = nullptr;
  size_t b_offset = 0, ldb = 0;
  cl_mem c = nullptr;
  size_t c_offset = 0, ldc = 0;
  size_t batch_count = 1;
  size_t a_stride = 0, b_stride = 0, c_stride = 0;  // elements between batch entries
  Epilogue epilogue;
};

// Fills lda/ldb/ldc for densely packed operands and strides for densely packed batches.
GemmArgs dense_gemm(Transpose trans_a, Transpose trans_b, size_t m, size_t n, size_t k, cl_mem a, cl_mem b,
                    cl_mem c, size_t batch_count = 1);

// Throws kInvalidInput naming the field and values when a size, leading dimension or stride is
// inconsistent. With `check_buffers`, also requires the buffers and checks each one's size (from
// clGetMemObjectInfo) against what the arguments reach.
void validate(const GemmArgs& args, bool check_buffers = true);

// What the dispatcher keys its choice on: magnitudes of M, N, K (buckets by powers of 4), the
// transposes, whether it is batched and whether an epilogue is present. Shapes in one class are
// assumed to prefer the same provider.
struct ShapeClass {
  uint8_t m_bucket = 0, n_bucket = 0, k_bucket = 0;
  Transpose trans_a = Transpose::kNo, trans_b = Transpose::kNo;
  bool batched = false;
  bool epilogue = false;

  static ShapeClass of(const GemmArgs& args);
  std::string key() const;  // stable text, e.g. "m256.n4096.k1024.nt.b0.e1"
  uint64_t packed() const;
  friend bool operator==(const ShapeClass&, const ShapeClass&) = default;
};

// One way of computing a GemmArgs on a device.
class GemmProvider {
 public:
  virtual ~GemmProvider() = default;
  virtual std::string_view name() const = 0;
  // Runs the shape once on the buffers in `runnable` (scratch buffers of the right size: the dispatcher
  // provides them) so that everything it needs is compiled and allocated; call at plan time.
  virtual void warm_up(const GemmArgs& runnable) = 0;
  // Enqueues the work on the device's in-order queue; returns without waiting. `event`, when given,
  // receives an event for the last command enqueued (the caller releases it).
  virtual void enqueue(const GemmArgs& args, cl_event* event = nullptr) = 0;
};

struct ProviderMeasurement {
  std::string provider;
  double seconds = 0;  // fastest of the timed runs
};

// The per-device dispatcher.
class GemmDispatcher {
 public:
  // Loads tuned CLBlast parameters, the tiled kernel's tile sizes and remembered choices for this
  // device from `cache_dir` (default: default_cache_dir()).
  explicit GemmDispatcher(Device& device, std::filesystem::path cache_dir = {});
  explicit GemmDispatcher(const ClTarget& target, std::filesystem::path cache_dir = {});
  ~GemmDispatcher();
  GemmDispatcher(const GemmDispatcher&) = delete;
  GemmDispatcher& operator=(const GemmDispatcher&) = delete;

  // Plan time: if this shape's class has no remembered choice, runs every provider on scratch buffers
  // of the same shape (one untimed run, then a few timed ones) and remembers the fastest; otherwise runs
  // the chosen provider once, so its kernels are compiled. Buffers in `shape` are not touched: only
  // sizes, transposes, leading dimensions, offsets, strides and the epilogue's presence count.
  void warm_up(const GemmArgs& shape);

  // Run time: dispatches to the chosen provider. A shape class never warmed goes to the tiled provider
  // without measuring (and unwarmed_calls() counts it), so a timed batch never pays for a measurement.
  void enqueue(const GemmArgs& args, cl_event* event = nullptr);

  std::string choice(const ShapeClass& shape_class) const;                             // "" when unknown
  std::vector<ProviderMeasurement> measurements(const ShapeClass& shape_class) const;  // empty if loaded
  size_t unwarmed_calls() const;

  // "tiled", "tiled_narrow" or "clblast"; throws kInvalidInput otherwise.
  GemmProvider& provider(std::string_view name);
  // Forgets remembered choices (in memory; the file is rewritten at the next measurement).
  void forget_choices();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// $CONVOY_CACHE_DIR, else $XDG_CACHE_HOME/convoy, else ~/.cache/convoy (shared with the program cache).
std::filesystem::path default_cache_dir();

// `convoy-worker --tune`: measures and stores, in `cache_dir`, what every later GemmDispatcher on this
// device loads: CLBlast's GEMM parameters from its own tuners (applied with clblast::OverrideParameters)
// and the tiled kernel's tile sizes. Forgets the remembered provider choices of this device, since they
// were measured with the old parameters. Progress goes to `log`. Slow: CLBlast builds one program per
// configuration it tries (about 500 for Xgemm alone), so an hour or more on a 2-core CPU.
struct TuneOptions {
  size_t size = 512;  // M = N = K the CLBlast tuners run at (multiples of 256 suit every tuner)
  // Fraction of the larger, random part of CLBlast's GEMM searches; their fixed first part (488
  // configurations for Xgemm, each one a program build) always runs. The helper kernels' small spaces
  // are searched in full.
  double fraction = 0.02;
  bool clblast = true;
  bool tiled = true;
};
void tune(const ClTarget& target, const std::filesystem::path& cache_dir, const TuneOptions& options,
          std::ostream& log);
// What `convoy-worker --tune` calls: tune() on the device with default options and the default cache
// folder. Returns the process exit status (0 on success; errors are printed to `log`).
int run_tune_command(Device& device, std::ostream& log);

}  // namespace gemm
}  // namespace convoy::opencl
