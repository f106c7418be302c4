// Provider 2: our register-tiled kernels (opencl/kernels/gemm_tiled.cl). Maps each transpose case onto
// gemm_nvec or gemm_kvec with run-time strides, and fuses the epilogue into the store.
#include <charconv>
#include <ostream>
#include <sstream>

#include "opencl/gemm/providers.h"
#include "runtime/error.h"

namespace convoy::opencl::gemm {
namespace {

constexpr std::string_view kKernelFile = "gemm_tiled.cl";

size_t round_up(size_t x, size_t multiple) { return (x + multiple - 1) / multiple * multiple; }
size_t ceil_div(size_t x, size_t d) { return (x + d - 1) / d; }

// Sets kernel arguments in order, each by value; cl_mem arguments may be null.
class ArgSetter {
 public:
  explicit ArgSetter(cl_kernel kernel) : kernel_(kernel) {}
  ArgSetter& u64(size_t v) {
    const cl_ulong x = v;
    return set(sizeof(x), &x);
  }
  ArgSetter& f32(float v) { return set(sizeof(v), &v); }
  ArgSetter& i32(int v) { return set(sizeof(v), &v); }
  ArgSetter& mem(cl_mem m) { return set(sizeof(cl_mem), m ? &m : nullptr); }

 private:
  ArgSetter& set(size_t size, const void* value) {
    cl_check(clSetKernelArg(kernel_, index_, size, value), "clSetKernelArg",
             str_cat("gemm argument ", index_));
    ++index_;
    return *this;
  }
  cl_kernel kernel_;
  cl_uint index_ = 0;
};

int parse_int(std::string_view text, std::string_view field) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  CONVOY_CHECK(ec == std::errc() && end == text.data() + text.size() && value > 0, "tiled config: field ",
               field, " has bad value '", text, "'");
  return value;
}

}  // namespace

std::string TiledConfig::build_options() const {
  return str_cat("-DTM=", tm, " -DTNV=", tnv, " -DKTM=", ktm, " -DKTN=", ktn);
}

std::string TiledConfig::text() const {
  return str_cat("tm=", tm, " tnv=", tnv, " narrow=", narrow_tm, "x", narrow_tnv, " ktm=", ktm, " ktn=", ktn,
                 " local=", local0, "x", local1, " pack=", pack_min_rows);
}

TiledConfig TiledConfig::parse(std::string_view text) {
  TiledConfig config;
  std::istringstream in{std::string(text)};
  std::string field;
  while (in >> field) {
    const size_t eq = field.find('=');
    CONVOY_CHECK(eq != std::string::npos, "tiled config: expected name=value, got '", field, "'");
    const std::string name = field.substr(0, eq);
    const std::string value = field.substr(eq + 1);
    if (name == "tm") {
      config.tm = parse_int(value, name);
    } else if (name == "tnv") {
      config.tnv = parse_int(value, name);
    } else if (name == "ktm") {
      config.ktm = parse_int(value, name);
    } else if (name == "ktn") {
      config.ktn = parse_int(value, name);
    } else if (name == "narrow") {
      const size_t x = value.find('x');
      CONVOY_CHECK(x != std::string::npos, "tiled config: narrow must be TMxTNV, got '", value, "'");
      config.narrow_tm = parse_int(std::string_view(value).substr(0, x), "narrow");
      config.narrow_tnv = parse_int(std::string_view(value).substr(x + 1), "narrow");
    } else if (name == "ntpack") {
      config.nt_pack_min_rows = parse_int(value, name);
    } else if (name == "pack") {
      config.pack_min_rows = parse_int(value, name);
    } else if (name == "local") {
      const size_t x = value.find('x');
      CONVOY_CHECK(x != std::string::npos, "tiled config: local must be AxB, got '", value, "'");
      config.local0 = parse_int(std::string_view(value).substr(0, x), "local");
      config.local1 = parse_int(std::string_view(value).substr(x + 1), "local");
    } else {
      fail(ErrorKind::kInvalidInput, "tiled config: unknown field '", name, "' in '", text, "'");
    }
  }
  return config;
}

TiledConfig TiledConfig::narrowed() const {
  TiledConfig narrow = *this;
  narrow.tm = narrow_tm;
  narrow.tnv = narrow_tnv;
  return narrow;
}

TiledConfig TiledConfig::default_for(cl_device_id device) {
  cl_device_type type = 0;
  cl_check(clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof(type), &type, nullptr), "clGetDeviceInfo");
  TiledConfig config;
  if (!(type & CL_DEVICE_TYPE_CPU)) {
    // A GPU runs one work-item per lane: a smaller register tile and real work-groups. `--tune` measures.
    config.tm = 4;
    config.tnv = 1;
    config.narrow_tm = 8;
    config.narrow_tnv = 1;
    config.ktm = 2;
    config.ktn = 2;
    config.local0 = 16;
    config.local1 = 4;
  }
  return config;
}

TiledProvider::TiledProvider(ProgramSource& programs, TiledConfig config, std::string name)
    : programs_(programs), config_(config), name_(std::move(name)) {}

TiledProvider::~TiledProvider() {
  for (cl_kernel kernel : {nvec_, kvec_, pack_b_, pack_bt_})
    if (kernel) clReleaseKernel(kernel);
  if (pack_) clReleaseMemObject(pack_);
}

void TiledProvider::ensure_kernels() {
  if (nvec_) return;
  cl_program program = programs_.get(kKernelFile, config_.build_options());
  cl_int status = CL_SUCCESS;
  nvec_ = clCreateKernel(program, "gemm_nvec", &status);
  cl_check(status, "clCreateKernel", "gemm_nvec");
  kvec_ = clCreateKernel(program, "gemm_kvec", &status);
  cl_check(status, "clCreateKernel", "gemm_kvec");
  pack_b_ = clCreateKernel(program, "gemm_pack_b", &status);
  cl_check(status, "clCreateKernel", "gemm_pack_b");
  pack_bt_ = clCreateKernel(program, "gemm_pack_b_transposed", &status);
  cl_check(status, "clCreateKernel", "gemm_pack_b_transposed");
}

void TiledProvider::warm_up(const GemmArgs& runnable) {
  {
    std::lock_guard lock(mutex_);
    const Launch l = plan(runnable);
    if (l.pack) ensure_pack_buffer(l.y_batches * l.panel_floats * sizeof(float));
  }
  // PoCL specialises a kernel per launch geometry at its first enqueue, so compiling is not enough:
  // run the shape once.
  enqueue(runnable);
  cl_check(clFinish(programs_.target().queue), "clFinish", "tiled gemm warm-up");
}

TiledProvider::Launch TiledProvider::plan(const GemmArgs& args) const {
  const bool ta = args.trans_a == Transpose::kYes;
  const bool tb = args.trans_b == Transpose::kYes;
  Launch l;
  // gemm_nvec computes D[P×Q] = X[P×K]·Y[K×Q], reading rows of Y. NN and TN: D = C, X = op(A), Y = B.
  // TT: D = C^T = B·A with X = B (stored N×K) and Y = A (stored K×M), stored back transposed.
  // NT: Y = B^T, which only has contiguous rows once packed; small NT problems use gemm_kvec instead.
  l.swap = ta && tb;
  l.p = l.swap ? args.n : args.m;
  l.q = l.swap ? args.m : args.n;
  // Packing costs one pass over B, 1/P of the product's work. An NT product (B stored transposed) packs
  // from few rows up: gemm_kvec's per-element reductions cost more than that whenever K is small.
  l.pack = l.p >= (!ta && tb ? config_.nt_pack_min_rows : config_.pack_min_rows);
  l.kvec = !ta && tb && !l.pack;
  l.x = l.swap ? args.b : args.a;
  l.x_offset = l.swap ? args.b_offset : args.a_offset;
  l.x_batch = l.swap ? args.b_stride : args.a_stride;
  l.x_si = l.swap ? args.ldb : (ta ? 1 : args.lda);
  l.x_sk = l.swap ? 1 : (ta ? args.lda : 1);
  l.y = l.swap ? args.a : args.b;
  l.y_offset = l.swap ? args.a_offset : args.b_offset;
  l.y_batch = l.swap ? args.a_stride : args.b_stride;
  l.y_sk = l.swap ? args.lda : (tb ? 1 : args.ldb);
  l.y_sj = l.swap ? 1 : (tb ? args.ldb : 1);
  l.c_si = l.swap ? 1 : args.ldc;
  l.c_sj = l.swap ? args.ldc : 1;
  // A broadcast Y (stride 0) is packed once for the whole batch.
  l.y_batches = l.y_batch == 0 ? 1 : args.batch_count;
  l.panel_floats = round_up(l.q, 16 * config_.tnv) * args.k;
  return l;
}

void TiledProvider::ensure_pack_buffer(size_t bytes) {
  if (bytes <= pack_bytes_) return;
  if (pack_) clReleaseMemObject(pack_);
  pack_ = nullptr;
  cl_int status = CL_SUCCESS;
  pack_ = clCreateBuffer(programs_.target().context, CL_MEM_READ_WRITE, bytes, nullptr, &status);
  cl_check(status, "clCreateBuffer", str_cat("tiled gemm packing buffer of ", bytes, " bytes"));
  pack_bytes_ = bytes;
}

void TiledProvider::enqueue(const GemmArgs& args, cl_event* event) {
  validate(args, /*check_buffers=*/false);
  std::lock_guard lock(mutex_);
  ensure_kernels();
  cl_command_queue queue = programs_.target().queue;
  const Epilogue& e = args.epilogue;
  const cl_mem bias = e.bias_axis == BiasAxis::kNone ? nullptr : e.bias;
  const size_t bias_offset = e.bias_axis == BiasAxis::kNone ? 0 : e.bias_offset;
  const int bias_mode = static_cast<int>(e.bias_axis), act = static_cast<int>(e.activation);
  const std::string what =
      str_cat("tiled gemm M=", args.m, " N=", args.n, " K=", args.k, " batch=", args.batch_count);
  const Launch l = plan(args);
  const size_t local[3] = {config_.local0, config_.local1, 1};
  size_t global[3] = {0, 0, args.batch_count};

  if (l.kvec) {
    ArgSetter(kvec_)
        .u64(args.m)
        .u64(args.n)
        .u64(args.k)
        .f32(args.alpha)
        .f32(args.beta)
        .mem(args.a)
        .u64(args.a_offset)
        .u64(args.lda)
        .u64(args.a_stride)
        .mem(args.b)
        .u64(args.b_offset)
        .u64(args.ldb)
        .u64(args.b_stride)
        .mem(args.c)
        .u64(args.c_offset)
        .u64(args.ldc)
        .u64(args.c_stride)
        .i32(bias_mode)
        .mem(bias)
        .u64(bias_offset)
        .i32(act)
        .f32(e.min_value)
        .f32(e.max_value);
    global[0] = round_up(ceil_div(args.m, config_.ktm), local[0]);
    global[1] = round_up(ceil_div(args.n, config_.ktn), local[1]);
    cl_check(clEnqueueNDRangeKernel(queue, kvec_, 3, nullptr, global, local, 0, nullptr, event),
             "clEnqueueNDRangeKernel", what);
    return;
  }

  cl_mem y = l.y;
  size_t y_offset = l.y_offset, y_sk = l.y_sk, y_batch = l.y_batch, y_panel = 0;
  if (l.pack) {
    // Sized at warm-up; a shape never warmed may have to grow it here.
    ensure_pack_buffer(l.y_batches * l.panel_floats * sizeof(float));
    const size_t chunks = round_up(l.q, 16 * config_.tnv) / 16;
    if (l.y_sk == 1 && l.y_sj != 1) {
      ArgSetter(pack_bt_)
          .u64(args.k)
          .u64(l.q)
          .mem(l.y)
          .u64(l.y_offset)
          .u64(l.y_sj)
          .u64(l.y_batch)
          .mem(pack_)
          .u64(l.panel_floats);
      const size_t pack_global[3] = {chunks, ceil_div(args.k, 16), l.y_batches};
      cl_check(clEnqueueNDRangeKernel(queue, pack_bt_, 3, nullptr, pack_global, nullptr, 0, nullptr, nullptr),
               "clEnqueueNDRangeKernel", "gemm_pack_b_transposed for " + what);
    } else {
      ArgSetter(pack_b_)
          .u64(args.k)
          .u64(l.q)
          .mem(l.y)
          .u64(l.y_offset)
          .u64(l.y_sk)
          .u64(l.y_sj)
          .u64(l.y_batch)
          .mem(pack_)
          .u64(l.panel_floats);
      const size_t pack_global[3] = {chunks, args.k, l.y_batches};
      cl_check(clEnqueueNDRangeKernel(queue, pack_b_, 3, nullptr, pack_global, nullptr, 0, nullptr, nullptr),
               "clEnqueueNDRangeKernel", "gemm_pack_b for " + what);
    }
    y = pack_;
    y_offset = 0;
    y_sk = 16 * config_.tnv;
    y_batch = l.y_batch == 0 ? 0 : l.panel_floats;
    y_panel = args.k * 16 * config_.tnv;
  }
  ArgSetter(nvec_)
      .u64(l.p)
      .u64(l.q)
      .u64(args.k)
      .f32(args.alpha)
      .f32(args.beta)
      .mem(l.x)
      .u64(l.x_offset)
      .u64(l.x_si)
      .u64(l.x_sk)
      .u64(l.x_batch)
      .mem(y)
      .u64(y_offset)
      .u64(y_sk)
      .u64(y_batch)
      .u64(y_panel)
      .mem(args.c)
      .u64(args.c_offset)
      .u64(l.c_si)
      .u64(l.c_sj)
      .u64(args.c_stride)
      .i32(bias_mode)
      .mem(bias)
      .u64(bias_offset)
      .i32(l.swap ? 1 : 0)
      .i32(act)
      .f32(e.min_value)
      .f32(e.max_value);
  global[0] = round_up(ceil_div(l.p, config_.tm), local[0]);
  global[1] = round_up(ceil_div(l.q, 16 * config_.tnv), local[1]);
  cl_check(clEnqueueNDRangeKernel(queue, nvec_, 3, nullptr, global, local, 0, nullptr, event),
           "clEnqueueNDRangeKernel", what);
}

TiledConfig load_tiled_config(const std::filesystem::path& cache_dir, cl_device_id device) {
  std::string text;
  if (!read_file(tiled_config_path(cache_dir, device), text)) return TiledConfig::default_for(device);
  // Line 1: "# <device key>", line 2: the config.
  const size_t newline = text.find('\n');
  if (newline == std::string::npos || text.substr(0, newline) != "# " + device_key(device))
    return TiledConfig::default_for(device);
  std::string body = text.substr(newline + 1);
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
  return TiledConfig::parse(body);
}

TiledConfig tune_tiled(const ClTarget& target, std::ostream& log) {
  cl_device_type type = 0;
  cl_check(clGetDeviceInfo(target.device, CL_DEVICE_TYPE, sizeof(type), &type, nullptr), "clGetDeviceInfo");
  // Each candidate sets all three tiles, measured independently: the wide gemm_nvec tile on a square NN
  // product large enough to be compute-bound (B packed, as such sizes run), the narrow one on a product
  // with few rows (B unpacked), the gemm_kvec tile on an NT product with fewer rows than packing starts
  // at (a linear layer at batch 16). AVX-512 CPUs: tiles that fit 32 vector registers with room for the
  // operands; GPUs: smaller tiles in work-groups of 64. Each candidate costs two program builds.
  const std::vector<std::string> candidates =
      type & CL_DEVICE_TYPE_CPU ? std::vector<std::string>{"tm=8 tnv=2 narrow=16x1 ktm=4 ktn=4",
                                                           "tm=6 tnv=2 narrow=12x1 ktm=3 ktn=4",
                                                           "tm=4 tnv=4 narrow=8x1 ktm=2 ktn=8",
                                                           "tm=12 tnv=1 narrow=24x1 ktm=4 ktn=6"}
                                : std::vector<std::string>{"tm=4 tnv=1 narrow=8x1 ktm=2 ktn=2 local=16x4",
                                                           "tm=2 tnv=1 narrow=4x1 ktm=1 ktn=2 local=16x4",
                                                           "tm=4 tnv=1 narrow=8x1 ktm=2 ktn=2 local=8x8"};
  struct Probe {
    const char* what;
    GemmArgs shape;
    std::unique_ptr<ScratchOperands> operands = nullptr;
    double best_seconds = 1e30;
    TiledConfig best = {};
  };
  Probe probes[] = {{"wide NN 512x512x512",
                     dense_gemm(Transpose::kNo, Transpose::kNo, 512, 512, 512, nullptr, nullptr, nullptr)},
                    {"narrow NN 64x8192x576",
                     dense_gemm(Transpose::kNo, Transpose::kNo, 64, 8192, 576, nullptr, nullptr, nullptr)},
                    {"kvec NT 16x1024x512",
                     dense_gemm(Transpose::kNo, Transpose::kYes, 16, 1024, 512, nullptr, nullptr, nullptr)}};
  for (Probe& probe : probes) probe.operands = std::make_unique<ScratchOperands>(target, probe.shape);
  ProgramSource programs(target);
  for (const std::string& text : candidates) {
    const TiledConfig candidate = TiledConfig::parse(text);
    TiledProvider wide(programs, candidate);
    TiledProvider narrow(programs, candidate.narrowed());
    GemmProvider* runs_on[] = {&wide, &narrow, &wide};
    log << "tiled " << candidate.text() << ":";
    for (size_t i = 0; i < std::size(probes); ++i) {
      Probe& probe = probes[i];
      const double seconds = time_provider(*runs_on[i], probe.operands->args(), target.queue, 3);
      const GemmArgs& g = probe.shape;
      log << " " << probe.what << " " << 2.0 * g.m * g.n * g.k / seconds * 1e-9 << " GFLOP/s";
      if (seconds < probe.best_seconds) probe.best_seconds = seconds, probe.best = candidate;
    }
    log << std::endl;
  }
  TiledConfig best = probes[0].best;
  best.narrow_tm = probes[1].best.narrow_tm;
  best.narrow_tnv = probes[1].best.narrow_tnv;
  // One program holds both wide kernels, so the kvec winner joins when it agrees on the work-group shape.
  if (probes[2].best.local0 == best.local0 && probes[2].best.local1 == best.local1) {
    best.ktm = probes[2].best.ktm;
    best.ktn = probes[2].best.ktn;
  }
  return best;
}

}  // namespace convoy::opencl::gemm
