// The GEMM providers (tiled kernel, CLBlast) and the dispatcher against a naive double-precision GEMM on
// awkward shapes: sizes that are multiples of nothing, 1s, transposes, offsets, padded leading
// dimensions, strided batches (including a broadcast operand) and every epilogue. Tolerances follow
// CLBlast's own tests: relative ~1e-4 of the magnitude Σ|a·b| plus a small absolute margin.
//
// Kernel builds are the slow part on PoCL; the program cache lives under the build folder
// (CONVOY_CACHE_DIR) so reruns skip them.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "opencl/gemm/providers.h"
#include "runtime/error.h"

using namespace convoy;
using namespace convoy::opencl::gemm;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// ctest sets CONVOY_CACHE_DIR to a folder in the build tree; run by hand, the binary points it beside
// itself before the first Device opens, so neither run fills ~/.cache.
fs::path gemm_test_cache_dir() {
  if (const char* dir = std::getenv("CONVOY_CACHE_DIR"); dir && *dir) return dir;
  const fs::path dir = fs::read_symlink("/proc/self/exe").parent_path() / "convoy-cache";
  setenv("CONVOY_CACHE_DIR", dir.c_str(), /*overwrite=*/0);
  return dir;
}

bool is_t(Transpose t) { return t == Transpose::kYes; }

// A GEMM problem with host data, laid out exactly as GemmArgs describes it.
struct Problem {
  GemmArgs args;  // buffers filled in by run()
  std::vector<float> a, b, c, bias;

  Problem(Transpose ta, Transpose tb, size_t m, size_t n, size_t k, size_t batch = 1) {
    args = dense_gemm(ta, tb, m, n, k, nullptr, nullptr, nullptr, batch);
  }
  void fill(uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    a.resize(a_extent(args));
    b.resize(b_extent(args));
    c.resize(c_extent(args));
    bias.resize(bias_extent(args));
    for (auto* v : {&a, &b, &c, &bias})
      for (float& x : *v) x = dist(rng);
  }
  float a_at(size_t batch, size_t i, size_t kk) const {
    const size_t base = args.a_offset + batch * args.a_stride;
    return a[base + (is_t(args.trans_a) ? kk * args.lda + i : i * args.lda + kk)];
  }
  float b_at(size_t batch, size_t kk, size_t j) const {
    const size_t base = args.b_offset + batch * args.b_stride;
    return b[base + (is_t(args.trans_b) ? j * args.ldb + kk : kk * args.ldb + j)];
  }
};

double activate(double v, const Epilogue& e) {
  switch (e.activation) {
    case Activation::kIdentity:
      return v;
    case Activation::kRelu:
      return v > 0 ? v : 0;
    case Activation::kRelu6:
      return std::min(std::max(v, 0.0), 6.0);
    case Activation::kHardtanh:
      return std::min(std::max(v, double(e.min_value)), double(e.max_value));
    case Activation::kGelu:
      return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Activation::kGeluTanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
    case Activation::kSilu:
      return v / (1 + std::exp(-v));
    case Activation::kHardswish:
      return v * std::min(std::max(v + 3, 0.0), 6.0) / 6;
    case Activation::kSigmoid:
      return 1 / (1 + std::exp(-v));
  }
  return v;
}

// Runs `run` on device copies of the problem's operands and checks every element of C (and that the
// elements of the C buffer outside the matrices are untouched).
template <typename Run>
void check(const ClTarget& target, const Problem& p, Run run) {
  auto upload = [&](const std::vector<float>& host) -> cl_mem {
    if (host.empty()) return nullptr;
    cl_int status = CL_SUCCESS;
    cl_mem m = clCreateBuffer(target.context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                              host.size() * sizeof(float), const_cast<float*>(host.data()), &status);
    REQUIRE(status == CL_SUCCESS);
    return m;
  };
  GemmArgs args = p.args;
  args.a = upload(p.a);
  args.b = upload(p.b);
  args.c = upload(p.c);
  args.epilogue.bias = upload(p.bias);
  validate(args);
  run(args);
  std::vector<float> got(p.c.size());
  REQUIRE(clEnqueueReadBuffer(target.queue, args.c, CL_TRUE, 0, got.size() * sizeof(float), got.data(), 0,
                              nullptr, nullptr) == CL_SUCCESS);
  for (cl_mem m : {args.a, args.b, args.c, args.epilogue.bias})
    if (m) clReleaseMemObject(m);

  const Epilogue& e = p.args.epilogue;
  std::vector<bool> written(got.size(), false);
  size_t bad = 0;
  for (size_t batch = 0; batch < p.args.batch_count; ++batch)
    for (size_t i = 0; i < p.args.m; ++i)
      for (size_t j = 0; j < p.args.n; ++j) {
        double sum = 0, magnitude = 0;
        for (size_t kk = 0; kk < p.args.k; ++kk) {
          const double prod = double(p.a_at(batch, i, kk)) * p.b_at(batch, kk, j);
          sum += prod;
          magnitude += std::abs(prod);
        }
        const size_t ci = p.args.c_offset + batch * p.args.c_stride + i * p.args.ldc + j;
        double v = p.args.alpha * sum;
        magnitude = std::abs(p.args.alpha) * magnitude;
        if (p.args.beta != 0) {
          v += p.args.beta * p.c[ci];
          magnitude += std::abs(p.args.beta * p.c[ci]);
        }
        if (e.bias_axis == BiasAxis::kAlongN) v += p.bias[e.bias_offset + j];
        if (e.bias_axis == BiasAxis::kAlongM) v += p.bias[e.bias_offset + i];
        const double want = activate(v, e);
        written[ci] = true;
        // Every activation here has slope ≤ 1.1, so the product's error bound carries through.
        if (!(std::abs(got[ci] - want) <= 1e-5 + 1e-4 * magnitude) && bad++ < 5)
          FAIL_CHECK("batch " << batch << " C[" << i << "][" << j << "] = " << got[ci] << ", want " << want);
      }
  for (size_t x = 0; x < got.size(); ++x)
    if (!written[x] && got[x] != p.c[x] && bad++ < 5)
      FAIL_CHECK("C[" << x << "] outside the matrices was written");
  CHECK(bad == 0);
}

// The awkward shapes every provider runs.
std::vector<std::pair<std::string, Problem>> awkward_problems() {
  std::vector<std::pair<std::string, Problem>> cases;
  auto add = [&](std::string name, Problem p) {
    p.fill(static_cast<uint32_t>(cases.size() + 1));
    cases.emplace_back(std::move(name), std::move(p));
  };
  const Transpose N = Transpose::kNo, T = Transpose::kYes;
  add("1x1x1", Problem(N, N, 1, 1, 1));
  add("7x13x5", Problem(N, N, 7, 13, 5));
  add("33x65x17", Problem(N, N, 33, 65, 17));
  add("M=1", Problem(N, N, 1, 37, 19));
  add("N=1", Problem(N, N, 29, 1, 23));
  add("K=1", Problem(N, N, 9, 40, 1));
  add("A^T 33x65x17", Problem(T, N, 33, 65, 17));
  add("B^T 33x65x17", Problem(N, T, 33, 65, 17));
  add("A^T B^T 33x65x17", Problem(T, T, 33, 65, 17));
  add("B^T K=37 (not a multiple of 16)", Problem(N, T, 10, 7, 37));
  {
    Problem p(N, N, 17, 35, 21);
    p.args.a_offset = 3;
    p.args.b_offset = 5;
    p.args.c_offset = 7;
    p.args.lda = 21 + 4;  // lda > K
    p.args.ldb = 35 + 2;
    p.args.ldc = 35 + 3;
    add("offsets, padded leading dimensions", std::move(p));
  }
  {
    Problem p(T, T, 12, 18, 9);
    p.args.a_offset = 1;
    p.args.b_offset = 2;
    p.args.c_offset = 3;
    p.args.lda = 12 + 3;
    p.args.ldb = 9 + 1;
    p.args.ldc = 18 + 5;
    p.args.alpha = 0.5f;
    p.args.beta = -1.5f;
    add("A^T B^T with offsets, alpha, beta", std::move(p));
  }
  {
    Problem p(N, N, 6, 20, 11);
    p.args.alpha = 2.0f;
    p.args.beta = 0.75f;
    add("alpha and beta", std::move(p));
  }
  {
    Problem p(N, N, 5, 9, 7, 3);
    p.args.a_offset = 2;
    p.args.a_stride = 5 * 7 + 4;  // padded between entries
    p.args.c_stride = 5 * 9 + 1;
    add("batched with strides", std::move(p));
  }
  {
    Problem p(N, T, 13, 11, 16, 4);  // attention-like: Q·K^T per head
    p.args.b_stride = 0;             // one B for every entry, as a broadcast matmul
    add("batched B^T, B broadcast", std::move(p));
  }
  {
    Problem p(T, N, 3, 33, 8, 2);
    add("batched A^T", std::move(p));
  }
  return cases;
}

// One problem per activation, alternating the bias axis and transposes so each epilogue path
// (vector stores, edge stores, transposed stores, kvec stores) meets several activations.
std::vector<std::pair<std::string, Problem>> epilogue_problems() {
  std::vector<std::pair<std::string, Problem>> cases;
  const Activation all[] = {Activation::kIdentity, Activation::kRelu,      Activation::kRelu6,
                            Activation::kHardtanh, Activation::kGelu,      Activation::kGeluTanh,
                            Activation::kSilu,     Activation::kHardswish, Activation::kSigmoid};
  const Transpose N = Transpose::kNo, T = Transpose::kYes;
  const Transpose ta[] = {N, N, T, T};
  const Transpose tb[] = {N, T, N, T};
  int index = 0;
  for (Activation act : all) {
    // N = 40: two full float16 vectors and an edge; the values are scaled to cross every kink.
    Problem p(ta[index % 4], tb[index % 4], 11, 40, 6, index % 3 == 2 ? 2 : 1);
    p.args.alpha = 3.0f;
    p.args.beta = index % 2 ? 0.5f : 0.0f;
    p.args.epilogue.activation = act;
    p.args.epilogue.bias_axis = index % 3 == 0   ? BiasAxis::kAlongN
                                : index % 3 == 1 ? BiasAxis::kAlongM
                                                 : BiasAxis::kNone;
    p.args.epilogue.bias_offset = 2;
    p.args.epilogue.min_value = -0.5f;
    p.args.epilogue.max_value = 1.25f;
    p.fill(100 + index);
    cases.emplace_back(
        std::string(activation_name(act)) + (p.args.epilogue.bias_axis == BiasAxis::kAlongN   ? " +bias[j]"
                                             : p.args.epilogue.bias_axis == BiasAxis::kAlongM ? " +bias[i]"
                                                                                              : ""),
        std::move(p));
    ++index;
  }
  return cases;
}

// One dispatcher (and its providers) for the whole file: kernel builds are what costs time.
struct Fixture {
  fs::path cache_dir = gemm_test_cache_dir();
  std::unique_ptr<opencl::Device> device = opencl::Device::open();
  ClTarget target = target_of(*device);
  GemmDispatcher dispatcher{target, cache_dir};
  // The tiled kernels with B always packed into panels first (by default only from 256 rows, or 32 for
  // NT products, up).
  ProgramSource programs{target};
  TiledProvider packed_tiled{programs, TiledConfig::parse("pack=1 ntpack=1")};

  GemmProvider& provider(std::string_view name) {
    return name == "tiled packed" ? packed_tiled : dispatcher.provider(name);
  }
};
Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("tiled GEMM kernels match a naive GEMM on awkward shapes", "[opencl][gemm]") {
  Fixture& f = fixture();
  for (const char* provider : {"tiled", "tiled_narrow", "tiled packed"}) {
    for (auto& [name, problem] : awkward_problems()) {
      INFO(provider << ": " << name);
      check(f.target, problem, [&](const GemmArgs& args) {
        f.provider(provider).enqueue(args);
        REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
      });
    }
  }
}

TEST_CASE("CLBlast provider matches a naive GEMM on awkward shapes", "[opencl][gemm]") {
  Fixture& f = fixture();
  GemmProvider& clblast = f.dispatcher.provider("clblast");
  for (auto& [name, problem] : awkward_problems()) {
    INFO(name);
    check(f.target, problem, [&](const GemmArgs& args) {
      clblast.enqueue(args);
      REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
    });
  }
}

TEST_CASE("every epilogue, fused (tiled) and separate (CLBlast)", "[opencl][gemm]") {
  Fixture& f = fixture();
  for (const char* provider : {"tiled", "tiled_narrow", "tiled packed", "clblast"}) {
    for (auto& [name, problem] : epilogue_problems()) {
      INFO(provider << ": " << name);
      check(f.target, problem, [&](const GemmArgs& args) {
        f.provider(provider).enqueue(args);
        REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
      });
    }
  }
}

TEST_CASE("dispatcher measures once per shape class, remembers and persists the choice", "[opencl][gemm]") {
  Fixture& f = fixture();
  const fs::path dir = f.cache_dir / ("dispatch-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    GemmDispatcher dispatcher(f.target, dir);
    Problem p(Transpose::kNo, Transpose::kYes, 33, 65, 17);
    p.args.epilogue.activation = Activation::kRelu;
    p.args.epilogue.bias_axis = BiasAxis::kAlongN;
    p.fill(7);
    const ShapeClass shape_class = ShapeClass::of(p.args);
    CHECK(dispatcher.choice(shape_class).empty());

    dispatcher.warm_up(p.args);
    const std::string chosen = dispatcher.choice(shape_class);
    const auto measured = dispatcher.measurements(shape_class);
    REQUIRE(measured.size() == 3);
    CHECK(measured[0].provider == "tiled");
    CHECK(measured[1].provider == "tiled_narrow");
    CHECK(measured[2].provider == "clblast");
    for (const auto& m : measured) CHECK(m.seconds > 0);
    const auto fastest = *std::min_element(
        measured.begin(), measured.end(), [](const auto& x, const auto& y) { return x.seconds < y.seconds; });
    CHECK(fastest.provider == chosen);

    check(f.target, p, [&](const GemmArgs& args) {
      dispatcher.enqueue(args);
      REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
    });
    CHECK(dispatcher.unwarmed_calls() == 0);

    // A shape in another class that was never warmed still computes (tiled), and is counted.
    for (auto& [name, problem] : awkward_problems()) {
      if (name != "7x13x5") continue;
      check(f.target, problem, [&](const GemmArgs& args) {
        dispatcher.enqueue(args);
        REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
      });
    }
    CHECK(dispatcher.unwarmed_calls() == 1);

    // Another shape in the same class is not measured again.
    Problem same_class(Transpose::kNo, Transpose::kYes, 50, 100, 20);
    same_class.args.epilogue = p.args.epilogue;
    REQUIRE(ShapeClass::of(same_class.args) == shape_class);
    dispatcher.warm_up(same_class.args);
    CHECK(dispatcher.choice(shape_class) == chosen);
    CHECK(dispatcher.measurements(shape_class).size() == 3);

    // A new dispatcher on the same folder loads the choice instead of measuring.
    GemmDispatcher reloaded(f.target, dir);
    CHECK(reloaded.choice(shape_class) == chosen);
    CHECK(reloaded.measurements(shape_class).empty());

    // Different tile sizes (as `--tune` stores them) make the remembered choices stale.
    write_file_atomically(tiled_config_path(dir, f.target.device),
                          "# " + device_key(f.target.device) + "\ntm=4 tnv=4 narrow=8x1 ktm=2 ktn=8\n");
    GemmDispatcher retuned(f.target, dir);
    CHECK(retuned.choice(shape_class).empty());
  }
  fs::remove_all(dir);
}

TEST_CASE("dispatcher's choices after warm-up match a naive GEMM", "[opencl][gemm]") {
  Fixture& f = fixture();
  for (auto& [name, problem] : awkward_problems()) {
    INFO(name);
    f.dispatcher.warm_up(problem.args);
    INFO("chosen: " << f.dispatcher.choice(ShapeClass::of(problem.args)));
    check(f.target, problem, [&](const GemmArgs& args) {
      f.dispatcher.enqueue(args);
      REQUIRE(clFinish(f.target.queue) == CL_SUCCESS);
    });
  }
}

TEST_CASE("GEMM arguments are validated with the offending values", "[opencl][gemm]") {
  GemmArgs args = dense_gemm(Transpose::kNo, Transpose::kNo, 4, 5, 6, nullptr, nullptr, nullptr);
  args.lda = 5;
  CHECK_THROWS_WITH(validate(args, false), Contains("lda=5") && Contains("6 columns of A"));
  args.lda = 6;
  args.ldc = 3;
  CHECK_THROWS_WITH(validate(args, false), Contains("ldc=3") && Contains("N=5"));
  args.ldc = 5;
  args.k = 0;
  CHECK_THROWS_WITH(validate(args, false), Contains("K=0"));
  args.k = 6;
  args.batch_count = 2;
  args.c_stride = 10;
  CHECK_THROWS_WITH(validate(args, false), Contains("c_stride=10") && Contains("overlap"));
  args.c_stride = 20;
  CHECK_NOTHROW(validate(args, false));
  CHECK_THROWS_WITH(validate(args, true), Contains("buffer A is null"));

  Fixture& f = fixture();
  cl_int status = CL_SUCCESS;
  cl_mem small = clCreateBuffer(f.target.context, CL_MEM_READ_WRITE, 10 * sizeof(float), nullptr, &status);
  REQUIRE(status == CL_SUCCESS);
  args.a = args.b = args.c = small;
  CHECK_THROWS_WITH(validate(args, true), Contains("buffer A holds 10 floats") && Contains("reach 48"));
  clReleaseMemObject(small);
}

TEST_CASE("shape classes bucket sizes by powers of 4", "[opencl][gemm]") {
  GemmArgs a = dense_gemm(Transpose::kNo, Transpose::kYes, 394, 2304, 768, nullptr, nullptr, nullptr);
  CHECK(ShapeClass::of(a).key() == "m1024.n4096.k1024.nt.b0.e0");
  GemmArgs b = dense_gemm(Transpose::kNo, Transpose::kYes, 300, 1100, 1000, nullptr, nullptr, nullptr);
  CHECK(ShapeClass::of(a) == ShapeClass::of(b));
  GemmArgs c = dense_gemm(Transpose::kNo, Transpose::kYes, 256, 2304, 768, nullptr, nullptr, nullptr, 2);
  CHECK(ShapeClass::of(c).key() == "m256.n4096.k1024.nt.b1.e0");
  CHECK(ShapeClass::of(a).packed() != ShapeClass::of(c).packed());
  GemmArgs one = dense_gemm(Transpose::kYes, Transpose::kNo, 1, 1, 1, nullptr, nullptr, nullptr);
  one.epilogue.activation = Activation::kSilu;
  CHECK(ShapeClass::of(one).key() == "m1.n1.k1.tn.b0.e1");
}

TEST_CASE("tiled kernel configuration parses and rejects bad fields", "[opencl][gemm]") {
  const TiledConfig c = TiledConfig::parse("tm=6 tnv=2 narrow=12x1 ktm=3 ktn=4 local=1x1 pack=300");
  CHECK(c.tm == 6);
  CHECK(c.narrowed().tm == 12);
  CHECK(c.narrowed().tnv == 1);
  CHECK(c.ktm == 3);
  CHECK(c.pack_min_rows == 300);
  CHECK(TiledConfig::parse(c.text()) == c);
  CHECK(c.build_options() == "-DTM=6 -DTNV=2 -DKTM=3 -DKTN=4");
  CHECK_THROWS_WITH(TiledConfig::parse("narrow=16"), Contains("TMxTNV"));
  CHECK_THROWS_WITH(TiledConfig::parse("tm=0"), Contains("tm") && Contains("'0'"));
  CHECK_THROWS_WITH(TiledConfig::parse("tiles=3"), Contains("unknown field 'tiles'"));
  CHECK_THROWS_WITH(TiledConfig::parse("local=4"), Contains("AxB"));
}
