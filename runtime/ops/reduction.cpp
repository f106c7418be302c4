// Reductions (sum, mean, prod, max/min, amax/amin, argmax/argmin, var/std, norm, all/any, logsumexp)
// and the ops that scan along one dim (softmax, log_softmax, cumsum).
//
// Floating values are reduced in double and rounded to the result dtype once at the end (PyTorch sums
// float32 in float32 with cascade summation: both are within float32 rounding of the exact value);
// integer values are reduced in int64 with wrap-around, so max/min/argmax of int64 stay exact.
#include <cmath>
#include <cstdint>
#include <limits>

#include "runtime/error.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

// ---------------------------------------------------------------------------------------------------
// Reduction driver

// How a reduction walks its input: the kept dims (which order the outputs) and the reduced dims
// (whose elements make one output).
struct ReductionPlan {
  Shape out_shape;  // kept dims, with 1s in place of reduced dims when keepdim
  Shape kept_sizes, kept_strides;
  Shape reduced_sizes, reduced_strides;
  int64_t group_size = 1;  // elements per output
};

ReductionPlan plan_reduction(const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  ReductionPlan p;
  for (int64_t d = 0; d < x.dim(); ++d) {
    size_t i = static_cast<size_t>(d);
    if (mask[i]) {
      p.reduced_sizes.push_back(x.sizes()[i]);
      p.reduced_strides.push_back(x.strides()[i]);
      p.group_size *= x.sizes()[i];
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.kept_sizes.push_back(x.sizes()[i]);
      p.kept_strides.push_back(x.strides()[i]);
      p.out_shape.push_back(x.sizes()[i]);
    }
  }
  return p;
}

// Appends the elements of one reduction group (starting at element offset `start`) to `values`,
// converted to `compute` dtype and held as T (double or int64_t).
template <typename T>
void gather_group(const Tensor& x, const ReductionPlan& plan, int64_t start, DType compute,
                  std::vector<T>& values) {
  const uint8_t* base = x.storage()->data();
  const int64_t es = static_cast<int64_t>(x.element_size());
  const DType dtype = x.dtype();
  const std::array<const int64_t*, 1> strides{plan.reduced_strides.data()};
  if (dtype == compute) {
    // Typed loads: no per-element dtype dispatch.
    dispatch_dtype(dtype, "reduction", [&](auto tag) {
      using E = typename decltype(tag)::type;
      for_each_element<1>(plan.reduced_sizes, strides, {start}, [&](const std::array<int64_t, 1>& off) {
        double v = to_double(*reinterpret_cast<const E*>(base + off[0] * es));
        if constexpr (std::is_same_v<T, double>) {
          values.push_back(v);
        } else if constexpr (std::is_integral_v<E>) {
          values.push_back(static_cast<int64_t>(*reinterpret_cast<const E*>(base + off[0] * es)));
        } else {
          values.push_back(static_cast<int64_t>(v));
        }
      });
    });
    return;
  }
  for_each_element<1>(plan.reduced_sizes, strides, {start}, [&](const std::array<int64_t, 1>& off) {
    const uint8_t* p = base + off[0] * es;
    if constexpr (std::is_same_v<T, double>) {
      values.push_back(round_to_dtype(load_as_double(p, dtype), compute));
    } else {
      values.push_back(wrap_to_dtype(load_as_int(p, dtype), compute));
    }
  });
}

// Calls fn(out_index, values) for each output of the reduction, with the group's values (in row-major
// order of the reduced dims) converted to `compute` dtype and held as T (double or int64_t). The
// outputs come in row-major order of out_shape, i.e. out_index is the output's contiguous index.
template <typename T, typename Fn>
void for_each_group(const Tensor& x, const ReductionPlan& plan, DType compute, Fn&& fn) {
  std::vector<T> values;
  values.reserve(static_cast<size_t>(plan.group_size));
  int64_t out_index = 0;
  const std::array<const int64_t*, 1> strides{plan.kept_strides.data()};
  for_each_element<1>(plan.kept_sizes, strides, {x.offset()}, [&](const std::array<int64_t, 1>& kept) {
    values.clear();
    gather_group(x, plan, kept[0], compute, values);
    fn(out_index++, values);
  });
}

struct ReduceArgs {
  std::vector<bool> mask;
  bool keepdim = false;
};

ReduceArgs reduce_args(const Tensor& x, const std::optional<std::vector<int64_t>>& dims, bool keepdim,
                       const char* op) {
  return {reduction_dim_mask(dims.value_or(std::vector<int64_t>{}), x.dim(), op), keepdim};
}

// The dtype sum/prod/cumsum give: the requested dtype, else int64 for integer and bool inputs.
DType accumulate_dtype(DType input, std::optional<DType> requested) {
  if (requested) return *requested;
  return is_integral(input, true) ? DType::kInt64 : input;
}

// Sum or product into a new tensor of `out_dtype`, computed in that dtype (x.to(dtype).sum()).
Tensor sum_prod(const Tensor& x, const ReduceArgs& a, DType out_dtype, bool is_prod) {
  ReductionPlan plan = plan_reduction(x, a.mask, a.keepdim);
  Tensor out = Tensor::empty(plan.out_shape, out_dtype);
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  size_t es = out.element_size();
  if (is_floating(out_dtype)) {
    for_each_group<double>(x, plan, out_dtype, [&](int64_t i, const std::vector<double>& v) {
      double acc = is_prod ? 1.0 : 0.0;
      for (double e : v) acc = is_prod ? acc * e : acc + e;
      store_double(o + i * es, out_dtype, acc);
    });
  } else {
    for_each_group<int64_t>(x, plan, out_dtype, [&](int64_t i, const std::vector<int64_t>& v) {
      uint64_t acc = is_prod ? 1 : 0;
      for (int64_t e : v) acc = is_prod ? acc * static_cast<uint64_t>(e) : acc + static_cast<uint64_t>(e);
      store_int(o + i * es, out_dtype, static_cast<int64_t>(acc));
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const ReduceArgs& a, std::optional<DType> requested, const char* op) {
  DType dtype = requested.value_or(x.dtype());
  CONVOY_CHECK(
      is_floating(dtype), op,
      ": could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: ",
      scalar_type_name(dtype));
  ReductionPlan plan = plan_reduction(x, a.mask, a.keepdim);
  Tensor out = Tensor::empty(plan.out_shape, dtype);
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  for_each_group<double>(x, plan, dtype, [&](int64_t i, const std::vector<double>& v) {
    double acc = 0;
    for (double e : v) acc += e;
    store_double(o + i * out.element_size(), dtype, acc / static_cast<double>(v.size()));
  });
  return out;
}

// Whether `a` should replace the running extreme `best` (NaN wins and stays, ties keep the first).
bool better_float(double a, double best, bool is_max) {
  if (std::isnan(best)) return false;
  if (std::isnan(a)) return true;
  return is_max ? a > best : a < best;
}

void check_nonempty_groups(const Tensor& x, const ReductionPlan& plan, const char* op) {
  CONVOY_CHECK(plan.group_size > 0 || shape_numel(plan.out_shape) == 0, op, ": expected reduction dims of ",
               x.describe(), " to have non-zero size");
}

// Extremes: values (same dtype as x) and, when wanted, int64 indices of the first extreme within
// each group (the flat index over the reduced dims).
std::pair<Tensor, Tensor> extremes(const Tensor& x, const ReduceArgs& a, bool is_max, bool want_values,
                                   bool want_indices, const char* op) {
  ReductionPlan plan = plan_reduction(x, a.mask, a.keepdim);
  check_nonempty_groups(x, plan, op);
  Tensor values = want_values ? Tensor::empty(plan.out_shape, x.dtype()) : Tensor();
  Tensor indices = want_indices ? Tensor::empty(plan.out_shape, DType::kInt64) : Tensor();
  auto store = [&](int64_t i, int64_t best_index) {
    if (want_indices) indices.data<int64_t>()[i] = best_index;
  };
  if (is_floating(x.dtype())) {
    for_each_group<double>(x, plan, x.dtype(), [&](int64_t i, const std::vector<double>& v) {
      size_t best = 0;
      for (size_t k = 1; k < v.size(); ++k)
        if (better_float(v[k], v[best], is_max)) best = k;
      if (want_values)
        store_double(static_cast<uint8_t*>(values.raw_data()) + i * values.element_size(), x.dtype(),
                     v[best]);
      store(i, static_cast<int64_t>(best));
    });
  } else {
    for_each_group<int64_t>(x, plan, x.dtype(), [&](int64_t i, const std::vector<int64_t>& v) {
      size_t best = 0;
      for (size_t k = 1; k < v.size(); ++k)
        if (is_max ? v[k] > v[best] : v[k] < v[best]) best = k;
      if (want_values)
        store_int(static_cast<uint8_t*>(values.raw_data()) + i * values.element_size(), x.dtype(), v[best]);
      store(i, static_cast<int64_t>(best));
    });
  }
  return {values, indices};
}

void check_floating(const Tensor& x, const char* op, const char* what) {
  CONVOY_CHECK(is_floating(x.dtype()), op, ": ", what, " only support floating point dtypes, got ",
               dtype_name(x.dtype()));
}

// var/std with Bessel's correction `correction` (unbiased: 1), two-pass in double.
Tensor variance(const Tensor& x, const ReduceArgs& a, double correction, bool take_sqrt, const char* op) {
  check_floating(x, op, "std and var");
  ReductionPlan plan = plan_reduction(x, a.mask, a.keepdim);
  Tensor out = Tensor::empty(plan.out_shape, x.dtype());
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  for_each_group<double>(x, plan, x.dtype(), [&](int64_t i, const std::vector<double>& v) {
    double n = static_cast<double>(v.size());
    double sum = 0;
    for (double e : v) sum += e;
    double mean = sum / n, m2 = 0;
    for (double e : v) m2 += (e - mean) * (e - mean);
    double var = m2 / std::max(0.0, n - correction);
    store_double(o + i * out.element_size(), x.dtype(), take_sqrt ? std::sqrt(var) : var);
  });
  return out;
}

// Vector p-norm over the reduced dims: p = 0 counts nonzeros, +-inf take max/min of |x|.
// With a dtype, the input is converted to it first (so integer inputs are fine).
Tensor norm(const Tensor& input, const ReduceArgs& a, double p, std::optional<DType> dtype, const char* op) {
  DType out_dtype = dtype.value_or(input.dtype());
  CONVOY_CHECK(is_floating(out_dtype), op, ": input dtype should be either floating point or complex. Got ",
               scalar_type_name(out_dtype), " instead");
  ReductionPlan plan = plan_reduction(input, a.mask, a.keepdim);
  Tensor out = Tensor::empty(plan.out_shape, out_dtype);
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  for_each_group<double>(input, plan, out_dtype, [&](int64_t i, const std::vector<double>& v) {
    double r = 0;
    if (p == 0) {
      for (double e : v) r += e != 0;
    } else if (std::isinf(p)) {
      r = p > 0 ? 0.0 : std::numeric_limits<double>::infinity();
      for (double e : v) {
        double m = std::fabs(e);
        if (std::isnan(m)) {
          r = m;
          break;
        }
        r = p > 0 ? std::max(r, m) : std::min(r, m);
      }
    } else if (p == 1) {
      for (double e : v) r += std::fabs(e);
    } else if (p == 2) {
      for (double e : v) r += e * e;
      r = std::sqrt(r);
    } else {
      for (double e : v) r += std::pow(std::fabs(e), p);
      r = std::pow(r, 1.0 / p);
    }
    store_double(o + i * out.element_size(), out_dtype, r);
  });
  return out;
}

// all/any: bool results, except that uint8 inputs give uint8 (PyTorch keeps that legacy behaviour).
Tensor all_any(const Tensor& x, const ReduceArgs& a, bool is_all) {
  ReductionPlan plan = plan_reduction(x, a.mask, a.keepdim);
  DType out_dtype = x.dtype() == DType::kUInt8 ? DType::kUInt8 : DType::kBool;
  Tensor out = Tensor::empty(plan.out_shape, out_dtype);
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  for_each_group<double>(x, plan, x.dtype(), [&](int64_t i, const std::vector<double>& v) {
    bool r = is_all;
    for (double e : v) {
      if (is_all && e == 0) r = false;
      if (!is_all && e != 0) r = true;
    }
    o[i] = r ? 1 : 0;
  });
  return out;
}

Tensor logsumexp(const Tensor& input, const ReduceArgs& a) {
  DType dtype = is_floating(input.dtype()) ? input.dtype() : kDefaultFloatDType;
  ReductionPlan plan = plan_reduction(input, a.mask, a.keepdim);
  Tensor out = Tensor::empty(plan.out_shape, dtype);
  uint8_t* o = static_cast<uint8_t*>(out.raw_data());
  for_each_group<double>(input, plan, dtype, [&](int64_t i, const std::vector<double>& v) {
    double m = -std::numeric_limits<double>::infinity();
    for (double e : v) m = (std::isnan(e) || e > m) ? e : m;
    // An infinite maximum is not subtracted (PyTorch masks it to 0), so all -inf gives -inf.
    if (std::isinf(m)) m = 0;
    double s = 0;
    for (double e : v) s += std::exp(e - m);
    store_double(o + i * out.element_size(), dtype, std::log(s) + m);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Scans along one dim

// Calls fn(in_offset, out_offset) for the first element of every lane along `dim` of `in` and the
// same-shaped `out`; a 0-dim tensor is one lane of one element.
template <typename Fn>
void for_each_lane(const Tensor& in, const Tensor& out, int64_t dim, Fn&& fn) {
  if (in.dim() == 0) {
    fn(in.offset(), out.offset());
    return;
  }
  Shape sizes = in.sizes();
  sizes[static_cast<size_t>(dim)] = 1;
  for_each_element<2>(sizes, {in.strides().data(), out.strides().data()}, {in.offset(), out.offset()},
                      [&](const std::array<int64_t, 2>& off) { fn(off[0], off[1]); });
}

enum class LaneOp { kSoftmax, kLogSoftmax, kCumsum };

// softmax / log_softmax / cumsum of `x` along `dim`, computed in `dtype` (x converted first).
Tensor along_dim(const Tensor& x, int64_t dim_arg, DType dtype, LaneOp kind, const char* op) {
  int64_t dim = wrap_dim(dim_arg, x.dim(), op);
  Tensor out = Tensor::empty(x.sizes(), dtype);
  int64_t n = x.dim() == 0 ? 1 : x.sizes()[static_cast<size_t>(dim)];
  int64_t in_stride = x.dim() == 0 ? 0 : x.strides()[static_cast<size_t>(dim)];
  int64_t out_stride = x.dim() == 0 ? 0 : out.strides()[static_cast<size_t>(dim)];
  const uint8_t* ib = x.storage()->data();
  uint8_t* ob = out.storage()->data();
  size_t ies = x.element_size(), oes = out.element_size();
  bool convert = x.dtype() != dtype;
  std::vector<double> lane(static_cast<size_t>(n));
  for_each_lane(x, out, dim, [&](int64_t in_off, int64_t out_off) {
    if (kind == LaneOp::kCumsum && !is_floating(dtype)) {
      uint64_t acc = 0;
      for (int64_t j = 0; j < n; ++j) {
        int64_t v = load_as_int(ib + (in_off + j * in_stride) * static_cast<int64_t>(ies), x.dtype());
        acc += static_cast<uint64_t>(convert ? wrap_to_dtype(v, dtype) : v);
        store_int(ob + (out_off + j * out_stride) * static_cast<int64_t>(oes), dtype,
                  static_cast<int64_t>(acc));
      }
      return;
    }
    for (int64_t j = 0; j < n; ++j) {
      double v = load_as_double(ib + (in_off + j * in_stride) * static_cast<int64_t>(ies), x.dtype());
      lane[static_cast<size_t>(j)] = convert ? round_to_dtype(v, dtype) : v;
    }
    if (kind == LaneOp::kCumsum) {
      double acc = 0;
      for (double& v : lane) v = acc += v;
    } else {
      double m = -std::numeric_limits<double>::infinity();
      for (double v : lane) m = (std::isnan(v) || v > m) ? v : m;
      double s = 0;
      if (kind == LaneOp::kSoftmax) {
        for (double& v : lane) s += (v = std::exp(v - m));
        for (double& v : lane) v /= s;
      } else {
        for (double v : lane) s += std::exp(v - m);
        double log_s = std::log(s);
        for (double& v : lane) v = v - m - log_s;
      }
    }
    for (int64_t j = 0; j < n; ++j)
      store_double(ob + (out_off + j * out_stride) * static_cast<int64_t>(oes), dtype,
                   lane[static_cast<size_t>(j)]);
  });
  return out;
}

// softmax's dtype rule: the requested dtype (input converted first), else the input's, which must be
// floating.
DType softmax_dtype(const Tensor& x, const IValue& dtype_arg, const char* op) {
  std::optional<DType> requested = optional_dtype_arg(dtype_arg, op);
  DType d = requested.value_or(x.dtype());
  CONVOY_CHECK(is_floating(d), op, ": not implemented for '", scalar_type_name(d),
               "' (softmax needs a floating dtype)");
  return d;
}

// ---------------------------------------------------------------------------------------------------
// Type inference

const IValue* constant_or_null(const std::vector<const IValue*>& constants, int index) {
  return arg_constant(constants, index);
}

// Reduced shape when dims (nullopt index: all dims) and keepdim are constants.
std::optional<Shape> infer_shape(const std::vector<TypePtr>& args,
                                 const std::vector<const IValue*>& constants, int dim_index,
                                 int keepdim_index, const char* op) {
  std::optional<std::vector<int64_t>> dims;
  if (dim_index >= 0) {
    const IValue* d = constant_or_null(constants, dim_index);
    if (!d) return std::nullopt;
    dims = optional_int_list_arg(*d);
  }
  bool keepdim = false;
  if (keepdim_index >= 0) {
    const IValue* k = constant_or_null(constants, keepdim_index);
    if (!k) return std::nullopt;
    keepdim = k->to_bool();
  }
  try {
    return infer_reduced_shape(arg_shape(args, 0), dims, keepdim, op);
  } catch (const Error&) {
    return std::nullopt;  // a bad dim is reported by the kernel with the tensor's shape
  }
}

enum class DTypeRule { kAccumulate, kSame, kInt64, kBoolOrByte, kFloatOrDefault };

std::optional<DType> infer_dtype(const std::vector<TypePtr>& args,
                                 const std::vector<const IValue*>& constants, DTypeRule rule,
                                 int dtype_index) {
  if (dtype_index >= 0) {
    const IValue* c = constant_or_null(constants, dtype_index);
    if (!c) return std::nullopt;
    if (c->is_int()) return dtype_from_scalar_type(c->to_int());
  }
  if (rule == DTypeRule::kInt64) return DType::kInt64;
  std::optional<DType> in = arg_dtype(args, 0);
  if (!in) return std::nullopt;
  switch (rule) {
    case DTypeRule::kAccumulate:
      return accumulate_dtype(*in, std::nullopt);
    case DTypeRule::kSame:
      return in;
    case DTypeRule::kBoolOrByte:
      return *in == DType::kUInt8 ? DType::kUInt8 : DType::kBool;
    case DTypeRule::kFloatOrDefault:
      return is_floating(*in) ? *in : kDefaultFloatDType;
    case DTypeRule::kInt64:
      break;
  }
  return DType::kInt64;
}

// dim_index / keepdim_index / dtype_index: -1 when the overload has no such argument (no dim: all).
InferFn infer_reduction(DTypeRule rule, int dim_index, int keepdim_index, int dtype_index, const char* op,
                        int outputs = 1) {
  return [=](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
    std::optional<Shape> shape = infer_shape(args, constants, dim_index, keepdim_index, op);
    std::vector<TypePtr> out{Type::tensor(infer_dtype(args, constants, rule, dtype_index), shape)};
    if (outputs == 2) out.push_back(Type::tensor(DType::kInt64, shape));
    return out;
  };
}

// Scans keep the input's shape.
InferFn infer_scan(DTypeRule rule, int dtype_index) {
  return [=](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
    return std::vector<TypePtr>{
        Type::tensor(infer_dtype(args, constants, rule, dtype_index), arg_shape(args, 0))};
  };
}

// ---------------------------------------------------------------------------------------------------
// Registration helpers

const Tensor& self_of(IValueList& args) { return args[0].to_tensor(); }

std::optional<std::vector<int64_t>> dims_of(const IValue& v) { return optional_int_list_arg(v); }

std::vector<int64_t> one_dim(const IValue& v) { return {v.to_int()}; }

// Correction for var/std from the `unbiased` and `correction` overloads.
double correction_of(const IValue& correction) { return correction.is_none() ? 1.0 : correction.to_double(); }

Tensor elementwise_extreme(const Tensor& a, const Tensor& b, bool is_max, const char* op) {
  DType common = result_type({promotion_operand(a), promotion_operand(b)});
  Tensor out = Tensor::empty(broadcast_shapes(a.sizes(), b.sizes(), op), common);
  if (is_floating(common)) {
    map_elements<double, 2>(out, {&a, &b}, common, op, [is_max](double x, double y) {
      if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<double>::quiet_NaN();
      return is_max ? std::max(x, y) : std::min(x, y);
    });
  } else {
    map_elements<int64_t, 2>(out, {&a, &b}, common, op, [is_max](int64_t x, int64_t y) {
      return is_max ? std::max(x, y) : std::min(x, y);
    });
  }
  return out;
}

void register_sum_family(OpRegistry& r) {
  r.add(
      "aten::sum(Tensor self, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        DType d = accumulate_dtype(x.dtype(), optional_dtype_arg(args[1], "aten::sum"));
        return IValueList{IValue(sum_prod(x, reduce_args(x, std::nullopt, false, "aten::sum"), d, false))};
      },
      infer_reduction(DTypeRule::kAccumulate, -1, -1, 1, "aten::sum"));
  r.add(
      "aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> "
      "Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        DType d = accumulate_dtype(x.dtype(), optional_dtype_arg(args[3], "aten::sum"));
        return IValueList{
            IValue(sum_prod(x, reduce_args(x, dims_of(args[1]), args[2].to_bool(), "aten::sum"), d, false))};
      },
      infer_reduction(DTypeRule::kAccumulate, 1, 2, 3, "aten::sum"));
  r.add(
      "aten::prod(Tensor self, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        DType d = accumulate_dtype(x.dtype(), optional_dtype_arg(args[1], "aten::prod"));
        return IValueList{IValue(sum_prod(x, reduce_args(x, std::nullopt, false, "aten::prod"), d, true))};
      },
      infer_reduction(DTypeRule::kAccumulate, -1, -1, 1, "aten::prod"));
  r.add(
      "aten::prod.dim_int(Tensor self, int dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        DType d = accumulate_dtype(x.dtype(), optional_dtype_arg(args[3], "aten::prod"));
        return IValueList{
            IValue(sum_prod(x, reduce_args(x, one_dim(args[1]), args[2].to_bool(), "aten::prod"), d, true))};
      },
      infer_reduction(DTypeRule::kAccumulate, 1, 2, 3, "aten::prod"));
  r.add(
      "aten::mean(Tensor self, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{IValue(mean(x, reduce_args(x, std::nullopt, false, "aten::mean"),
                                      optional_dtype_arg(args[1], "aten::mean"), "aten::mean"))};
      },
      infer_reduction(DTypeRule::kSame, -1, -1, 1, "aten::mean"));
  r.add(
      "aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{IValue(mean(x, reduce_args(x, dims_of(args[1]), args[2].to_bool(), "aten::mean"),
                                      optional_dtype_arg(args[3], "aten::mean"), "aten::mean"))};
      },
      infer_reduction(DTypeRule::kSame, 1, 2, 3, "aten::mean"));
  r.add(
      "aten::cumsum(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        DType d = accumulate_dtype(x.dtype(), optional_dtype_arg(args[2], "aten::cumsum"));
        return IValueList{IValue(along_dim(x, args[1].to_int(), d, LaneOp::kCumsum, "aten::cumsum"))};
      },
      infer_scan(DTypeRule::kAccumulate, 2));
}

void register_extreme_family(OpRegistry& r) {
  for (bool is_max : {true, false}) {
    std::string name = is_max ? "max" : "min";
    auto op = std::make_shared<std::string>("aten::" + name);
    r.add(
        "aten::" + name + "(Tensor self) -> Tensor",
        [op, is_max](IValueList& args) {
          const Tensor& x = self_of(args);
          CONVOY_CHECK(
              x.numel() > 0, *op,
              "(): expected reduction dim to be specified for input.numel() == 0; specify the reduction "
              "dim with the 'dim' argument");
          return IValueList{IValue(
              extremes(x, reduce_args(x, std::nullopt, false, op->c_str()), is_max, true, false, op->c_str())
                  .first)};
        },
        infer_reduction(DTypeRule::kSame, -1, -1, -1, op->c_str()));
    r.add(
        "aten::" + name + ".dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)",
        [op, is_max](IValueList& args) {
          const Tensor& x = self_of(args);
          auto [values, indices] =
              extremes(x, reduce_args(x, one_dim(args[1]), args[2].to_bool(), op->c_str()), is_max, true,
                       true, op->c_str());
          return IValueList{IValue(values), IValue(indices)};
        },
        infer_reduction(DTypeRule::kSame, 1, 2, -1, op->c_str(), 2));
    r.add(
        "aten::" + name + ".other(Tensor self, Tensor other) -> Tensor",
        [op, is_max](IValueList& args) {
          return IValueList{
              IValue(elementwise_extreme(args[0].to_tensor(), args[1].to_tensor(), is_max, op->c_str()))};
        },
        [](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
          return std::vector<TypePtr>{
              Type::tensor(infer_result_type(args, constants, {0, 1}), infer_broadcast_shape(args, {0, 1}))};
        });

    auto aop = std::make_shared<std::string>("aten::a" + name);
    r.add(
        "aten::a" + name + "(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor",
        [aop, is_max](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{
              IValue(extremes(x, reduce_args(x, dims_of(args[1]), args[2].to_bool(), aop->c_str()), is_max,
                              true, false, aop->c_str())
                         .first)};
        },
        infer_reduction(DTypeRule::kSame, 1, 2, -1, aop->c_str()));

    auto argop = std::make_shared<std::string>("aten::arg" + name);
    r.add(
        "aten::arg" + name + "(Tensor self, int? dim=None, bool keepdim=False) -> Tensor",
        [argop, is_max](IValueList& args) {
          const Tensor& x = self_of(args);
          CONVOY_CHECK(x.dtype() != DType::kBool, *argop, ": not implemented for 'Bool'");
          std::optional<std::vector<int64_t>> dims;
          if (!args[1].is_none()) dims = one_dim(args[1]);
          CONVOY_CHECK(x.numel() > 0 || dims, *argop,
                       ": expected reduction dim to be specified for input.numel() == 0");
          ReduceArgs ra = reduce_args(x, dims, args[2].to_bool(), argop->c_str());
          // Without a dim the index is into the flattened tensor: reduce every dim at once.
          return IValueList{IValue(extremes(x, ra, is_max, false, true, argop->c_str()).second)};
        },
        infer_reduction(DTypeRule::kInt64, 1, 2, -1, argop->c_str()));
  }
}

void register_statistics_family(OpRegistry& r) {
  for (bool take_sqrt : {false, true}) {
    std::string name = take_sqrt ? "std" : "var";
    auto op = std::make_shared<std::string>("aten::" + name);
    r.add(
        "aten::" + name + "(Tensor self, bool unbiased=True) -> Tensor",
        [op, take_sqrt](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{IValue(variance(x, reduce_args(x, std::nullopt, false, op->c_str()),
                                            args[1].to_bool() ? 1.0 : 0.0, take_sqrt, op->c_str()))};
        },
        infer_reduction(DTypeRule::kSame, -1, -1, -1, op->c_str()));
    r.add(
        "aten::" + name + ".dim(Tensor self, int[1]? dim, bool unbiased=True, bool keepdim=False) -> Tensor",
        [op, take_sqrt](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{
              IValue(variance(x, reduce_args(x, dims_of(args[1]), args[3].to_bool(), op->c_str()),
                              args[2].to_bool() ? 1.0 : 0.0, take_sqrt, op->c_str()))};
        },
        infer_reduction(DTypeRule::kSame, 1, 3, -1, op->c_str()));
    r.add(
        "aten::" + name +
            ".correction(Tensor self, int[1]? dim, *, int? correction, bool keepdim=False) -> Tensor",
        [op, take_sqrt](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{
              IValue(variance(x, reduce_args(x, dims_of(args[1]), args[3].to_bool(), op->c_str()),
                              correction_of(args[2]), take_sqrt, op->c_str()))};
        },
        infer_reduction(DTypeRule::kSame, 1, 3, -1, op->c_str()));
  }

  // p=None means 2. The dtype overloads compute in (and return) the requested dtype.
  auto p_of = [](const IValue& p) { return p.is_none() ? 2.0 : p.to_double(); };
  r.add(
      "aten::norm.Scalar(Tensor self, Scalar p=2) -> Tensor",
      [p_of](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{IValue(norm(x, reduce_args(x, std::nullopt, false, "aten::norm"), p_of(args[1]),
                                      std::nullopt, "aten::norm"))};
      },
      infer_reduction(DTypeRule::kSame, -1, -1, -1, "aten::norm"));
  r.add(
      "aten::norm.ScalarOpt_dim(Tensor self, Scalar? p, int[1] dim, bool keepdim=False) -> Tensor",
      [p_of](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{IValue(norm(x, reduce_args(x, dims_of(args[2]), args[3].to_bool(), "aten::norm"),
                                      p_of(args[1]), std::nullopt, "aten::norm"))};
      },
      infer_reduction(DTypeRule::kSame, 2, 3, -1, "aten::norm"));
  r.add(
      "aten::norm.ScalarOpt_dim_dtype(Tensor self, Scalar? p, int[1] dim, bool keepdim, *, ScalarType dtype) "
      "-> Tensor",
      [p_of](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{
            IValue(norm(x, reduce_args(x, dims_of(args[2]), args[3].to_bool(), "aten::norm"), p_of(args[1]),
                        optional_dtype_arg(args[4], "aten::norm"), "aten::norm"))};
      },
      infer_reduction(DTypeRule::kSame, 2, 3, 4, "aten::norm"));
  r.add(
      "aten::norm.ScalarOpt_dtype(Tensor self, Scalar? p, *, ScalarType dtype) -> Tensor",
      [p_of](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{IValue(norm(x, reduce_args(x, std::nullopt, false, "aten::norm"), p_of(args[1]),
                                      optional_dtype_arg(args[2], "aten::norm"), "aten::norm"))};
      },
      infer_reduction(DTypeRule::kSame, -1, -1, 2, "aten::norm"));

  r.add(
      "aten::logsumexp(Tensor self, int[1] dim, bool keepdim=False) -> Tensor",
      [](IValueList& args) {
        const Tensor& x = self_of(args);
        return IValueList{
            IValue(logsumexp(x, reduce_args(x, dims_of(args[1]), args[2].to_bool(), "aten::logsumexp")))};
      },
      infer_reduction(DTypeRule::kFloatOrDefault, 1, 2, -1, "aten::logsumexp"));

  for (bool is_all : {true, false}) {
    std::string name = is_all ? "all" : "any";
    auto op = std::make_shared<std::string>("aten::" + name);
    r.add(
        "aten::" + name + "(Tensor self) -> Tensor",
        [op, is_all](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{IValue(all_any(x, reduce_args(x, std::nullopt, false, op->c_str()), is_all))};
        },
        infer_reduction(DTypeRule::kBoolOrByte, -1, -1, -1, op->c_str()));
    r.add(
        "aten::" + name + ".dim(Tensor self, int dim, bool keepdim=False) -> Tensor",
        [op, is_all](IValueList& args) {
          const Tensor& x = self_of(args);
          return IValueList{
              IValue(all_any(x, reduce_args(x, one_dim(args[1]), args[2].to_bool(), op->c_str()), is_all))};
        },
        infer_reduction(DTypeRule::kBoolOrByte, 1, 2, -1, op->c_str()));
  }
}

void register_softmax_family(OpRegistry& r) {
  for (bool log : {false, true}) {
    std::string name = log ? "log_softmax" : "softmax";
    LaneOp kind = log ? LaneOp::kLogSoftmax : LaneOp::kSoftmax;
    auto op = std::make_shared<std::string>("aten::" + name);
    r.add(
        "aten::" + name + ".int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor",
        [op, kind](IValueList& args) {
          const Tensor& x = self_of(args);
          DType d = softmax_dtype(x, args[2], op->c_str());
          return IValueList{IValue(along_dim(x, args[1].to_int(), d, kind, op->c_str()))};
        },
        infer_scan(DTypeRule::kSame, 2));
    // The internal overloads: half_to_float asks for a float32 result from a float16 input.
    auto iop = std::make_shared<std::string>("aten::_" + name);
    r.add(
        "aten::_" + name + "(Tensor self, int dim, bool half_to_float) -> Tensor",
        [iop, kind](IValueList& args) {
          const Tensor& x = self_of(args);
          DType d = softmax_dtype(x, IValue(), iop->c_str());
          if (args[2].to_bool()) {
            CONVOY_CHECK(d == DType::kFloat16, *iop, ": half_to_float needs a float16 input, got ",
                         x.describe());
            d = DType::kFloat32;
          }
          return IValueList{IValue(along_dim(x, args[1].to_int(), d, kind, iop->c_str()))};
        },
        [](const std::vector<TypePtr>& args, const std::vector<const IValue*>& constants) {
          std::optional<DType> d = arg_dtype(args, 0);
          const IValue* h = arg_constant(constants, 2);
          if (!h)
            d.reset();
          else if (h->to_bool())
            d = DType::kFloat32;
          return std::vector<TypePtr>{Type::tensor(d, arg_shape(args, 0))};
        });
  }
}

}  // namespace

void register_reduction_ops(OpRegistry& registry) {
  register_sum_family(registry);
  register_extreme_family(registry);
  register_statistics_family(registry);
  register_softmax_family(registry);
}

}  // namespace convoy
