// Provider 1: CLBlast's SGEMM with parameters tuned for the device, plus our epilogue kernel after it.
#include <clblast.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <ostream>
#include <sstream>

#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {
namespace {

constexpr std::string_view kKernelFile = "gemm_tiled.cl";  // holds gemm_epilogue too

clblast::Transpose to_clblast(Transpose t) {
  return t == Transpose::kYes ? clblast::Transpose::kYes : clblast::Transpose::kNo;
}

void check_clblast(clblast::StatusCode status, std::string_view call, const GemmArgs& args) {
  if (status == clblast::StatusCode::kSuccess) return;
  fail(ErrorKind::kInternal, "CLBlast ", call, " failed with status ", static_cast<int>(status),
       " for M=", args.m, " N=", args.n, " K=", args.k, " batch=", args.batch_count,
       args.trans_a == Transpose::kYes ? " A^T" : "", args.trans_b == Transpose::kYes ? " B^T" : "");
}

std::string temp_key(const GemmArgs& a) {
  return str_cat(static_cast<int>(a.trans_a), static_cast<int>(a.trans_b), ":", a.m, ",", a.n, ",", a.k, ":",
                 a.a_offset, ",", a.lda, ",", a.b_offset, ",", a.ldb, ",", a.c_offset, ",", a.ldc);
}

}  // namespace

ClblastProvider::ClblastProvider(ProgramSource& programs) : programs_(programs) {}

ClblastProvider::~ClblastProvider() {
  if (epilogue_) clReleaseKernel(epilogue_);
  if (temp_) clReleaseMemObject(temp_);
}

// Bytes of the temporary buffer CLBlast's indirect GEMM needs; 0 when it takes the direct path. The
// indirect path runs batch entries one Gemm call each (see enqueue), so this is the largest need over the
// entries' offsets. Cached per shape: the query constructs a CLBlast routine, too slow for every call.
size_t ClblastProvider::temp_size(const GemmArgs& args) {
  const std::string key = str_cat(temp_key(args), ":", args.batch_count, ",", args.a_stride, ",",
                                  args.b_stride, ",", args.c_stride);
  if (auto it = temp_sizes_.find(key); it != temp_sizes_.end()) return it->second;
  cl_command_queue queue = programs_.target().queue;
  size_t most = 0;
  for (size_t entry = 0; entry < args.batch_count; ++entry) {
    size_t floats = 0;  // CLBlast reports the size in elements of T
    check_clblast(
        clblast::GemmTempBufferSize<float>(
            clblast::Layout::kRowMajor, to_clblast(args.trans_a), to_clblast(args.trans_b), args.m, args.n,
            args.k, args.a_offset + entry * args.a_stride, args.lda, args.b_offset + entry * args.b_stride,
            args.ldb, args.c_offset + entry * args.c_stride, args.ldc, &queue, floats),
        "GemmTempBufferSize", args);
    most = std::max(most, floats * sizeof(float));
    if (floats == 0) break;  // the direct path: the same for every entry
  }
  temp_sizes_.emplace(key, most);
  return most;
}

void ClblastProvider::warm_up(const GemmArgs& runnable) {
  {
    std::lock_guard lock(mutex_);
    const size_t bytes = temp_size(runnable);
    if (bytes > temp_bytes_) {
      if (temp_) clReleaseMemObject(temp_);
      temp_ = nullptr;
      cl_int status = CL_SUCCESS;
      temp_ = clCreateBuffer(programs_.target().context, CL_MEM_READ_WRITE, bytes, nullptr, &status);
      cl_check(status, "clCreateBuffer", str_cat("CLBlast temporary buffer of ", bytes, " bytes"));
      temp_bytes_ = bytes;
    }
  }
  // The first call compiles CLBlast's kernels for this device and path (and the epilogue's, if any).
  enqueue(runnable);
  cl_check(clFinish(programs_.target().queue), "clFinish", "CLBlast gemm warm-up");
}

void ClblastProvider::enqueue(const GemmArgs& args, cl_event* event) {
  validate(args, /*check_buffers=*/false);
  std::lock_guard lock(mutex_);
  cl_command_queue queue = programs_.target().queue;
  const bool epilogue = !args.epilogue.empty();
  cl_event* gemm_event = epilogue ? nullptr : event;
  const size_t bytes = temp_size(args);
  if (args.batch_count > 1 && bytes == 0) {
    // The direct kernel needs no temporary buffer, so the strided-batched routine allocates nothing.
    check_clblast(clblast::GemmStridedBatched<float>(
                      clblast::Layout::kRowMajor, to_clblast(args.trans_a), to_clblast(args.trans_b), args.m,
                      args.n, args.k, args.alpha, args.a, args.a_offset, args.lda, args.a_stride, args.b,
                      args.b_offset, args.ldb, args.b_stride, args.beta, args.c, args.c_offset, args.ldc,
                      args.c_stride, args.batch_count, &queue, gemm_event),
                  "GemmStridedBatched", args);
  } else {
    // Indirect path: CLBlast's strided-batched routine would allocate its padded copies on every call,
    // so run the entries one by one through Gemm with our preallocated temporary buffer. When the
    // shape was never warmed and needs more than we hold, CLBlast allocates its own (slow but correct).
    cl_mem temp = bytes > 0 && bytes <= temp_bytes_ ? temp_ : nullptr;
    for (size_t entry = 0; entry < args.batch_count; ++entry) {
      const bool last = entry + 1 == args.batch_count;
      check_clblast(clblast::Gemm<float>(clblast::Layout::kRowMajor, to_clblast(args.trans_a),
                                         to_clblast(args.trans_b), args.m, args.n, args.k, args.alpha, args.a,
                                         args.a_offset + entry * args.a_stride, args.lda, args.b,
                                         args.b_offset + entry * args.b_stride, args.ldb, args.beta, args.c,
                                         args.c_offset + entry * args.c_stride, args.ldc, &queue,
                                         last ? gemm_event : nullptr, temp),
                    "Gemm", args);
    }
  }
  if (!epilogue) return;

  if (!epilogue_) {
    cl_int status = CL_SUCCESS;
    epilogue_ =
        clCreateKernel(programs_.get(kKernelFile, TiledConfig{}.build_options()), "gemm_epilogue", &status);
    cl_check(status, "clCreateKernel", "gemm_epilogue");
  }
  const Epilogue& e = args.epilogue;
  const cl_mem bias = e.bias_axis == BiasAxis::kNone ? nullptr : e.bias;
  const cl_ulong m = args.m, n = args.n, c_offset = args.c_offset, ldc = args.ldc, c_batch = args.c_stride;
  const cl_ulong bias_offset = e.bias_axis == BiasAxis::kNone ? 0 : e.bias_offset;
  const cl_int bias_mode = static_cast<cl_int>(e.bias_axis), act = static_cast<cl_int>(e.activation);
  cl_uint i = 0;
  auto set = [&](size_t size, const void* value) {
    cl_check(clSetKernelArg(epilogue_, i, size, value), "clSetKernelArg",
             str_cat("gemm_epilogue argument ", i));
    ++i;
  };
  set(sizeof(m), &m);
  set(sizeof(n), &n);
  set(sizeof(cl_mem), &args.c);
  set(sizeof(c_offset), &c_offset);
  set(sizeof(ldc), &ldc);
  set(sizeof(c_batch), &c_batch);
  set(sizeof(bias_mode), &bias_mode);
  set(sizeof(cl_mem), bias ? &bias : nullptr);
  set(sizeof(bias_offset), &bias_offset);
  set(sizeof(act), &act);
  set(sizeof(float), &e.min_value);
  set(sizeof(float), &e.max_value);
  const size_t global[3] = {args.n, args.m, args.batch_count};
  cl_check(clEnqueueNDRangeKernel(queue, epilogue_, 3, nullptr, global, nullptr, 0, nullptr, event),
           "clEnqueueNDRangeKernel", str_cat("gemm_epilogue M=", args.m, " N=", args.n));
}

// ---- Tuned parameters -------------------------------------------------------------------------------
// File format: "# <device key>" then one "<kernel>\t<parameter>\t<value>" line per parameter.

ClblastParameters load_clblast_parameters(const std::filesystem::path& cache_dir, cl_device_id device) {
  ClblastParameters parameters;
  std::string text;
  if (!read_file(clblast_parameters_path(cache_dir, device), text)) return parameters;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != "# " + device_key(device)) return parameters;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string kernel, name;
    size_t value = 0;
    CONVOY_CHECK(fields >> kernel >> name >> value, "CLBlast parameters file ",
                 clblast_parameters_path(cache_dir, device).string(), ": bad line '", line, "'");
    parameters[kernel][name] = value;
  }
  for (const auto& [kernel, values] : parameters) {
    const std::unordered_map<std::string, size_t> map(values.begin(), values.end());
    const auto status = clblast::OverrideParameters(device, kernel, clblast::Precision::kSingle, map);
    CONVOY_CHECK(status == clblast::StatusCode::kSuccess, "CLBlast rejected the stored parameters for ",
                 kernel, " (status ", static_cast<int>(status), ") from ",
                 clblast_parameters_path(cache_dir, device).string(), "; run convoy-worker --tune again");
  }
  return parameters;
}

void store_clblast_parameters(const std::filesystem::path& cache_dir, cl_device_id device,
                              const ClblastParameters& parameters) {
  std::ostringstream out;
  out << "# " << device_key(device) << "\n";
  for (const auto& [kernel, values] : parameters)
    for (const auto& [name, value] : values) out << kernel << "\t" << name << "\t" << value << "\n";
  write_file_atomically(clblast_parameters_path(cache_dir, device), out.str());
}

ClblastParameters tune_clblast_kernels(const ClTarget& target, const TuneOptions& options, std::ostream& log,
                                       const std::function<void(const ClblastParameters&)>& progress) {
  ClblastParameters tuned;
  cl_command_queue queue = target.queue;
  const size_t s = options.size;
  // The helper kernels' spaces are small: always searched in full. Cheapest first, so that an
  // interrupted run has stored the most it could.
  for (const char* kernel : {"Copy", "Pad", "Transpose", "Padtranspose", "XgemmDirect", "Xgemm"}) {
    const auto start = std::chrono::steady_clock::now();
    std::unordered_map<std::string, size_t> parameters;
    const std::string_view name = kernel;
    clblast::StatusCode status;
    if (name == "Xgemm") {
      status = clblast::TuneXgemm<float>(&queue, s, s, s, options.fraction, parameters);
    } else if (name == "XgemmDirect") {
      // The direct kernel serves the small shapes; tune it at a size where it is used.
      status = clblast::TuneXgemmDirect<float>(&queue, 256, 256, 256, options.fraction, parameters);
    } else if (name == "Copy") {
      status = clblast::TuneCopy<float>(&queue, s, s, 1.0, parameters);
    } else if (name == "Pad") {
      status = clblast::TunePad<float>(&queue, s, s, 1.0, parameters);
    } else if (name == "Transpose") {
      status = clblast::TuneTranspose<float>(&queue, s, s, 1.0, parameters);
    } else {
      status = clblast::TunePadtranspose<float>(&queue, s, s, 1.0, parameters);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != clblast::StatusCode::kSuccess) {
      // Keep CLBlast's defaults for this kernel rather than failing the whole tuning run.
      log << "CLBlast " << kernel << ": tuner failed with status " << static_cast<int>(status)
          << ", keeping the defaults (" << seconds << " s)" << std::endl;
      continue;
    }
    log << "CLBlast " << kernel << ": tuned in " << seconds << " s:";
    for (const auto& [p, v] : std::map<std::string, size_t>(parameters.begin(), parameters.end()))
      log << " " << p << "=" << v;
    log << std::endl;
    tuned[kernel] = std::map<std::string, size_t>(parameters.begin(), parameters.end());
    if (progress) progress(tuned);
  }
  return tuned;
}

}  // namespace convoy::opencl::gemm
