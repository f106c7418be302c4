// Tensor factories on the device. The tracer computes small factory results on the host as scalar work
// (a shape-sized arange, a prim::NumToTensor); these implementations run when a result is large or is
// derived from a device tensor (zeros_like). zeros/ones/full are a fill kernel; arange, linspace and
// tensor literals depend only on their arguments, so their values are computed once when the plan is
// built and written into the arena as plan constants.
#include "opencl/ops/launch_util.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

// The result's dtype (and PyTorch's argument errors) from the reference kernel with every size list
// argument replaced by ones of the same length, so nothing large is allocated on the host.
DType factory_dtype(OpContext& cx, const IValueList& args, const std::vector<size_t>& size_args) {
  IValueList proxies = proxy_args(args);
  for (size_t i : size_args) {
    std::vector<int64_t> sizes = proxies[i].to_int_list();
    proxies[i] = IValue::int_list(std::vector<int64_t>(sizes.size(), 1));
  }
  return cx.node().op->kernel(proxies).at(0).to_tensor().dtype();
}

Shape size_arg(const IValue& v, const char* op) {
  std::vector<int64_t> sizes = v.to_int_list();
  for (int64_t s : sizes) CONVOY_CHECK(s >= 0, op, ": negative dimension ", s, " in size ", shape_str(sizes));
  return Shape(sizes.begin(), sizes.end());
}

// A filled tensor; `value` nullopt leaves it uninitialised (empty).
OpenCLOp filled(std::vector<size_t> size_args, std::function<Shape(const IValueList&)> shape,
                std::function<std::optional<double>(const IValueList&)> value) {
  return [=](OpContext& cx, IValueList& args) {
    DType dtype = factory_dtype(cx, args, size_args);
    Tensor out = cx.empty(shape(args), dtype);
    if (std::optional<double> v = value(args)) fill(cx, out, *v);
    return IValueList{IValue(out)};
  };
}

// Values fixed by the arguments alone: computed by the reference kernel and uploaded.
IValueList host_constant(OpContext& cx, IValueList& args) {
  IValueList r = cx.run_reference(args);
  for (IValue& v : r)
    if (v.is_tensor()) v = IValue(cx.to_device(v.to_tensor()));
  return r;
}

}  // namespace

void register_opencl_factory_ops(OpenCLOpTable& t) {
  auto from_size = [](size_t i) { return [i](const IValueList& a) { return size_arg(a[i], "factory"); }; };
  auto self_shape = [](const IValueList& a) { return a[0].to_tensor().sizes(); };
  auto none = [](const IValueList&) { return std::optional<double>(); };
  auto constant = [](double v) { return [v](const IValueList&) { return std::optional<double>(v); }; };
  auto arg_value = [](size_t i) {
    return [i](const IValueList& a) { return std::optional<double>(host_scalar_value(a[i])); };
  };
  t.add("aten::zeros", filled({0}, from_size(0), constant(0)));
  t.add("aten::ones", filled({0}, from_size(0), constant(1)));
  t.add("aten::full", filled({0}, from_size(0), arg_value(1)));
  t.add("aten::empty.memory_format", filled({0}, from_size(0), none));
  t.add("aten::zeros_like", filled({}, self_shape, constant(0)));
  t.add("aten::ones_like", filled({}, self_shape, constant(1)));
  t.add("aten::full_like", filled({}, self_shape, arg_value(1)));
  t.add("aten::empty_like", filled({}, self_shape, none));
  t.add("aten::new_zeros", filled({1}, from_size(1), constant(0)));
  t.add("aten::new_ones", filled({1}, from_size(1), constant(1)));
  t.add("aten::new_full", filled({1}, from_size(1), arg_value(2)));
  t.add("aten::new_empty", filled({1}, from_size(1), none));
  t.add("aten::zero_", [](OpContext& cx, IValueList& args) {
    Tensor self = cx.writable(args[0].to_tensor());
    fill(cx, self, 0.0);
    return IValueList{IValue(self)};
  });
  t.add("aten::fill_.Scalar", [](OpContext& cx, IValueList& args) {
    IValueList proxies = proxy_args(args);
    cx.node().op->kernel(proxies);  // PyTorch's checks of the value against the dtype
    Tensor self = cx.writable(args[0].to_tensor());
    fill(cx, self, host_scalar_value(args[1]));
    return IValueList{IValue(self)};
  });
  t.add("aten::fill_.Tensor", [](OpContext& cx, IValueList& args) {
    const Tensor& value = args[1].to_tensor();
    CONVOY_CHECK(value.dim() == 0, cx.where(),
                 ": fill_ only supports 0-dimension value tensor but got tensor with ", value.dim(),
                 " dimensions");
    Tensor self = cx.writable(args[0].to_tensor());
    if (!cx.is_device(value))
      fill(cx, self, value.item_double());
    else
      copy_into(cx, self, value);
    return IValueList{IValue(self)};
  });
  t.add("aten::copy_", [](OpContext& cx, IValueList& args) {
    Tensor self = cx.writable(args[0].to_tensor());
    const Tensor& src = args[1].to_tensor();
    broadcast_strides(src, self.sizes(),
                      "aten::copy_");  // PyTorch's error for a shape that does not broadcast
    copy_into(cx, self, src);
    return IValueList{IValue(self)};
  });
  for (const char* name : {"aten::arange", "aten::arange.start", "aten::arange.start_step", "aten::linspace",
                           "aten::scalar_tensor", "aten::tensor", "aten::tensor.float", "aten::tensor.int",
                           "aten::tensor.bool", "prim::NumToTensor.Scalar", "prim::NumToTensor.bool"})
    t.add(name, host_constant);
}

}  // namespace convoy::opencl
