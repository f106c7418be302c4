// OpenCL implementations of the reduction family (runtime/ops/reduction.cpp): sum, mean, prod,
// max/min (with indices), amax/amin, argmax/argmin, all/any, var/std, norm, logsumexp, softmax,
// log_softmax and cumsum. Result dtypes and argument errors come from the reference kernel on proxies;
// reduce.cl computes one output per work-group.
#include <cmath>
#include <limits>

#include "opencl/ops/launch_util.h"
#include "opencl/ops/nn.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

size_t group_size(OpContext& cx, int64_t count) {
  size_t limit = std::min<size_t>(256, cx.device().max_work_group_size);
  size_t g = 1;
  while (g * 2 <= limit && static_cast<int64_t>(g) < count) g *= 2;
  return g;
}

std::string acc_defines(OpContext& cx, DType acc) {
  switch (acc) {
    case DType::kFloat64:
      return compute_defines(cx, acc) + " -DACC=double";
    case DType::kFloat32:
      return " -DACC=float";
    default:
      return " -DACC=long -DACC_IS_INT";
  }
}

// The dims a reduction keeps (outer) and reduces (inner), as collapsed loops.
struct ReduceLoops {
  StridedLoop outer;  // strides: output, input
  StridedLoop inner;  // strides: input
  int64_t outputs = 1, count = 1;
};

ReduceLoops reduce_loops(const Tensor& in, const Tensor& out, const std::vector<bool>& mask, bool keepdim) {
  // The output's stride for each input dim (reduced dims of a keepdim=False output have none).
  Shape out_strides(static_cast<size_t>(in.dim()), 0);
  size_t k = 0;
  for (size_t d = 0; d < static_cast<size_t>(in.dim()); ++d) {
    if (mask[d] && !keepdim) continue;
    out_strides[d] = out.strides()[k++];
  }
  Shape outer_sizes, outer_out, outer_in, inner_sizes, inner_in;
  for (size_t d = 0; d < static_cast<size_t>(in.dim()); ++d) {
    if (mask[d]) {
      inner_sizes.push_back(in.sizes()[d]);
      inner_in.push_back(in.strides()[d]);
    } else {
      outer_sizes.push_back(in.sizes()[d]);
      outer_out.push_back(out_strides[d]);
      outer_in.push_back(in.strides()[d]);
    }
  }
  ReduceLoops r;
  r.outer = collapse(outer_sizes, {outer_out, outer_in});
  r.inner = collapse(inner_sizes, {inner_in});
  r.outputs = shape_numel(outer_sizes);
  r.count = shape_numel(inner_sizes);
  return r;
}

Shape reduced_shape(const Tensor& in, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < static_cast<size_t>(in.dim()); ++d) {
    if (!mask[d])
      out.push_back(in.sizes()[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

struct Reduction {
  std::string op;          // OP_ define without the prefix
  std::vector<bool> mask;  // reduced dims
  bool keepdim = false;
  DType out_dtype = DType::kFloat32;
  DType acc = DType::kFloat32;
  double p = 0;             // correction (var/std) or p (norm)
  bool with_index = false;  // max.dim/min.dim: also the indices
};

// Runs one reduction; returns the values (and the int64 indices when asked).
std::vector<Tensor> reduce(OpContext& cx, const Tensor& input, const Reduction& r) {
  Tensor in = cx.to_device(input);
  Shape shape = reduced_shape(in, r.mask, r.keepdim);
  Tensor out = cx.empty(shape, r.out_dtype);
  Tensor index = r.with_index ? cx.empty(shape, DType::kInt64) : Tensor();
  ReduceLoops loops = reduce_loops(in, out, r.mask, r.keepdim);
  bool extreme = r.op == "MAX" || r.op == "MIN" || r.op == "ARGMAX" || r.op == "ARGMIN";
  CONVOY_CHECK(!extreme || loops.count > 0 || loops.outputs == 0, cx.where(),
               ": cannot reduce over an empty dimension (the input is ", in.describe(), ")");
  if (loops.outputs == 0) return {out, index};
  size_t lsize = group_size(cx, loops.count);
  KernelLaunch k;
  k.file = "reduce.cl";
  k.kernel = "reduce";
  k.options = str_cat("-DOP_", r.op, acc_defines(cx, r.acc), load_defines(cx, "IN", in.dtype()),
                      store_defines(cx, "OUT", r.out_dtype), r.with_index ? " -DWITH_INDEX" : "");
  k.args.push_back(out);
  if (r.with_index) k.args.push_back(index);
  k.args.push_back(in);
  MetaBlock meta = loop_meta(loops.outer, 2);
  std::vector<int64_t> inner = loop_meta(loops.inner, 1).values;
  meta.values.insert(meta.values.end(), inner.begin(), inner.end());
  k.args.push_back(meta);
  k.args.push_back(loops.count);
  k.args.push_back(LocalMemory{lsize * dtype_size(r.acc)});
  k.args.push_back(LocalMemory{extreme ? lsize * sizeof(int64_t) : sizeof(int64_t)});
  k.args.push_back(compute_scalar(r.p, r.acc));
  k.global = {static_cast<size_t>(loops.outputs) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return {out, index};
}

std::vector<bool> all_dims(const Tensor& t) { return std::vector<bool>(static_cast<size_t>(t.dim()), true); }

std::vector<bool> dims_mask(const Tensor& t, const IValue& dims_arg, const char* op) {
  std::optional<std::vector<int64_t>> dims = optional_int_list_arg(dims_arg);
  if (!dims || dims->empty() || t.dim() == 0) return all_dims(t);
  return reduction_dim_mask(*dims, t.dim(), op);
}

// The reference kernel on proxies: PyTorch's result dtype, and its errors for bad arguments.
DType reference_dtype(OpContext& cx, IValueList& args, size_t output = 0) {
  IValueList proxies = proxy_args(args);
  IValueList r = cx.node().op->kernel(proxies);
  return r.at(output).to_tensor().dtype();
}

DType acc_for(DType dtype) { return compute_dtype_of(dtype); }

IValueList simple(OpContext& cx, IValueList& args, const std::string& op, std::vector<bool> mask,
                  bool keepdim, double p = 0) {
  DType out = reference_dtype(cx, args);
  const Tensor& self = args[0].to_tensor();
  Tensor in = self;
  // An explicit dtype= converts the input first (as PyTorch does), so accumulate in the output's type.
  DType acc = acc_for(op == "ALL" || op == "ANY" ? self.dtype() : out);
  if ((op == "SUM" || op == "MEAN" || op == "PROD") && is_floating(out) != is_floating(self.dtype()))
    acc = acc_for(out);
  Reduction r{op, std::move(mask), keepdim, out, acc, p, false};
  return {IValue(reduce(cx, in, r)[0])};
}

// softmax/log_softmax of `self` over `dim` into `out_dtype`.
Tensor softmax(OpContext& cx, const Tensor& self_in, int64_t dim, DType out_dtype, bool log) {
  Tensor self = cx.to_device(self_in);
  Tensor out = cx.empty(self.sizes(), out_dtype);
  if (self.numel() == 0) return out;
  if (self.dim() == 0) {
    fill(cx, out, log ? 0.0 : 1.0);
    return out;
  }
  size_t d = static_cast<size_t>(wrap_dim(dim, self.dim(), log ? "aten::log_softmax" : "aten::softmax"));
  Shape sizes, in_strides, out_strides;
  for (size_t i = 0; i < static_cast<size_t>(self.dim()); ++i) {
    if (i == d) continue;
    sizes.push_back(self.sizes()[i]);
    in_strides.push_back(self.strides()[i]);
    out_strides.push_back(out.strides()[i]);
  }
  StridedLoop rows = collapse(sizes, {in_strides, out_strides});
  int64_t n = self.sizes()[d];
  DType acc = out_dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  KernelLaunch k;
  k.file = "softmax.cl";
  k.options = str_cat(acc_defines(cx, acc), load_defines(cx, "IN", self.dtype()),
                      store_defines(cx, "OUT", out_dtype), log ? " -DLOG_SOFTMAX" : "");
  if (nn_rows_layout(cx)) {  // one work-item per row
    const size_t lsize = std::min<size_t>(16, cx.device().max_work_group_size);
    const size_t rows_count = static_cast<size_t>(rows.numel());
    k.kernel = "softmax_rows";
    if (!log && out_dtype == DType::kFloat32) k.options += " -DSTORE_EXP";
    k.args = {out, self, loop_meta(rows, 2), n, self.strides()[d], out.strides()[d], rows.numel()};
    k.global = {(rows_count + lsize - 1) / lsize * lsize};
    k.local = {lsize};
    cx.launch(std::move(k));
    return out;
  }
  size_t lsize = group_size(cx, n);
  k.kernel = "softmax";
  k.args = {out,
            self,
            loop_meta(rows, 2),
            n,
            self.strides()[d],
            out.strides()[d],
            LocalMemory{lsize * dtype_size(acc)}};
  k.global = {static_cast<size_t>(rows.numel()) * lsize};
  k.local = {lsize};
  cx.launch(std::move(k));
  return out;
}

Tensor cumsum(OpContext& cx, const Tensor& self_in, int64_t dim, DType out_dtype) {
  Tensor self = cx.to_device(self_in);
  Tensor out = cx.empty(self.sizes(), out_dtype);
  if (self.numel() == 0) return out;
  if (self.dim() == 0) {
    copy_into(cx, out, self);
    return out;
  }
  size_t d = static_cast<size_t>(wrap_dim(dim, self.dim(), "aten::cumsum"));
  Shape sizes, in_strides, out_strides;
  for (size_t i = 0; i < static_cast<size_t>(self.dim()); ++i) {
    if (i == d) continue;
    sizes.push_back(self.sizes()[i]);
    in_strides.push_back(self.strides()[i]);
    out_strides.push_back(out.strides()[i]);
  }
  StridedLoop rows = collapse(sizes, {in_strides, out_strides});
  DType acc = compute_dtype_of(out_dtype);
  KernelLaunch k;
  k.file = "reduce.cl";
  k.kernel = "cumsum";
  k.options = str_cat("-DOP_SUM", acc_defines(cx, acc), load_defines(cx, "IN", self.dtype()),
                      store_defines(cx, "OUT", out_dtype));
  k.args = {out, self, loop_meta(rows, 2), self.sizes()[d], self.strides()[d], out.strides()[d]};
  k.global = {static_cast<size_t>(rows.numel())};
  cx.launch(std::move(k));
  return out;
}

double norm_p(const IValue& v) { return v.is_none() ? 2.0 : v.to_double(); }

}  // namespace

void register_opencl_reduction_ops(OpenCLOpTable& t) {
  // sum / mean / prod
  t.add("aten::sum",
        [](OpContext& cx, IValueList& a) { return simple(cx, a, "SUM", all_dims(a[0].to_tensor()), false); });
  t.add("aten::sum.dim_IntList", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "SUM", dims_mask(a[0].to_tensor(), a[1], "aten::sum"), a[2].to_bool());
  });
  t.add("aten::mean", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "MEAN", all_dims(a[0].to_tensor()), false);
  });
  t.add("aten::mean.dim", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "MEAN", dims_mask(a[0].to_tensor(), a[1], "aten::mean"), a[2].to_bool());
  });
  t.add("aten::prod", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "PROD", all_dims(a[0].to_tensor()), false);
  });
  t.add("aten::prod.dim_int", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "PROD", dims_mask(a[0].to_tensor(), a[1], "aten::prod"), a[2].to_bool());
  });
  // max / min
  for (bool is_max : {true, false}) {
    std::string op = is_max ? "MAX" : "MIN";
    t.add(is_max ? "aten::max" : "aten::min", [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, all_dims(a[0].to_tensor()), false);
    });
    t.add(is_max ? "aten::max.dim" : "aten::min.dim", [op](OpContext& cx, IValueList& a) {
      IValueList proxies = proxy_args(a);
      cx.node().op->kernel(proxies);
      const Tensor& self = a[0].to_tensor();
      Reduction r{
          op,  dims_mask(self, a[1], op.c_str()), a[2].to_bool(), self.dtype(), acc_for(self.dtype()), 0,
          true};
      std::vector<Tensor> out = reduce(cx, self, r);
      return IValueList{IValue(out[0]), IValue(out[1])};
    });
    t.add(is_max ? "aten::amax" : "aten::amin", [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, dims_mask(a[0].to_tensor(), a[1], op.c_str()), a[2].to_bool());
    });
    std::string arg = is_max ? "ARGMAX" : "ARGMIN";
    t.add(is_max ? "aten::argmax" : "aten::argmin", [arg](OpContext& cx, IValueList& a) {
      IValueList proxies = proxy_args(a);
      Tensor proxy_out = cx.node().op->kernel(proxies).at(0).to_tensor();
      const Tensor& self = a[0].to_tensor();
      bool keepdim = a[2].to_bool();
      std::vector<bool> mask = a[1].is_none() ? all_dims(self) : dims_mask(self, a[1], arg.c_str());
      Reduction r{arg, mask, keepdim, DType::kInt64, acc_for(self.dtype()), 0, false};
      Tensor out = reduce(cx, self, r)[0];
      // argmax(dim=None, keepdim=True) keeps every dim as 1, like the reference.
      if (out.dim() != proxy_out.dim())
        out = out.as_strided(proxy_out.sizes(), contiguous_strides(proxy_out.sizes()), out.offset());
      return IValueList{IValue(out)};
    });
  }
  // all / any
  for (bool is_all : {true, false}) {
    std::string op = is_all ? "ALL" : "ANY";
    t.add(is_all ? "aten::all" : "aten::any", [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, all_dims(a[0].to_tensor()), false);
    });
    t.add(is_all ? "aten::all.dim" : "aten::any.dim", [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, dims_mask(a[0].to_tensor(), a[1], op.c_str()), a[2].to_bool());
    });
  }
  // var / std
  for (bool is_std : {false, true}) {
    std::string op = is_std ? "STD" : "VAR";
    std::string base = is_std ? "aten::std" : "aten::var";
    t.add(base, [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, all_dims(a[0].to_tensor()), false, a[1].to_bool() ? 1.0 : 0.0);
    });
    t.add(base + ".dim", [op](OpContext& cx, IValueList& a) {
      return simple(cx, a, op, dims_mask(a[0].to_tensor(), a[1], op.c_str()), a[3].to_bool(),
                    a[2].to_bool() ? 1.0 : 0.0);
    });
    t.add(base + ".correction", [op](OpContext& cx, IValueList& a) {
      double correction = a[2].is_none() ? 1.0 : static_cast<double>(a[2].to_int());
      return simple(cx, a, op, dims_mask(a[0].to_tensor(), a[1], op.c_str()), a[3].to_bool(), correction);
    });
  }
  // norm
  t.add("aten::norm.Scalar", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "NORM", all_dims(a[0].to_tensor()), false, norm_p(a[1]));
  });
  t.add("aten::norm.ScalarOpt_dtype", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "NORM", all_dims(a[0].to_tensor()), false, norm_p(a[1]));
  });
  for (const char* name : {"aten::norm.ScalarOpt_dim", "aten::norm.ScalarOpt_dim_dtype"})
    t.add(name, [](OpContext& cx, IValueList& a) {
      return simple(cx, a, "NORM", dims_mask(a[0].to_tensor(), a[2], "aten::norm"), a[3].to_bool(),
                    norm_p(a[1]));
    });
  t.add("aten::logsumexp", [](OpContext& cx, IValueList& a) {
    return simple(cx, a, "LOGSUMEXP", dims_mask(a[0].to_tensor(), a[1], "aten::logsumexp"), a[2].to_bool());
  });
  // softmax family
  for (bool log : {false, true}) {
    t.add(log ? "aten::log_softmax.int" : "aten::softmax.int", [log](OpContext& cx, IValueList& a) {
      DType out = reference_dtype(cx, a);
      return IValueList{IValue(softmax(cx, a[0].to_tensor(), a[1].to_int(), out, log))};
    });
    t.add(log ? "aten::_log_softmax" : "aten::_softmax", [log](OpContext& cx, IValueList& a) {
      DType out = reference_dtype(cx, a);
      return IValueList{IValue(softmax(cx, a[0].to_tensor(), a[1].to_int(), out, log))};
    });
  }
  t.add("aten::cumsum", [](OpContext& cx, IValueList& a) {
    DType out = reference_dtype(cx, a);
    return IValueList{IValue(cumsum(cx, a[0].to_tensor(), a[1].to_int(), out))};
  });
}

}  // namespace convoy::opencl
