// Views on the device are metadata: a view op returns a tensor on the same arena allocation or weight
// buffer with new sizes, strides and offset, so nothing is launched. The reference kernels of these ops
// only compute metadata (Tensor::as_strided), so they run here on device tensors unchanged. reshape and
// flatten copy (on the device) only when no strides express the new shape; contiguous copies only a
// non-contiguous tensor; to/type_as convert with one copy kernel.
#include <optional>

#include "opencl/ops/launch_util.h"
#include "runtime/ops/kernel_util.h"
#include "runtime/ops/registry.h"
#include "runtime/ops/shape_geometry.h"

namespace convoy::opencl {

namespace {

// The reference kernel on device tensors (model constants are uploaded first, so views of a weight
// are views of its device copy).
IValueList metadata_kernel(OpContext& cx, IValueList& args) {
  for (IValue& a : args) {
    if (a.is_tensor() && a.to_tensor().defined()) a = IValue(cx.to_device(a.to_tensor()));
  }
  return cx.node().op->kernel(args);
}

Tensor reshape(OpContext& cx, const Tensor& self_in, const std::vector<int64_t>& size, const char* op) {
  Tensor self = cx.to_device(self_in);
  Shape shape = infer_view_size(size, self.numel(), op);
  if (std::optional<Shape> strides = view_strides(self.sizes(), self.strides(), shape))
    return self.as_strided(shape, *strides, self.offset());
  Tensor copy = contiguous_copy(cx, self);
  return copy.as_strided(shape, contiguous_strides(shape), copy.offset());
}

IValue convert(OpContext& cx, const Tensor& self, std::optional<DType> dtype, bool copy) {
  DType target = dtype.value_or(self.dtype());
  if (target == self.dtype() && !copy) return IValue(self);
  return IValue(contiguous_copy(cx, self, target));
}

}  // namespace

void register_opencl_view_ops(OpenCLOpTable& t) {
  for (const char* name :
       {"aten::view", "aten::view_as", "aten::permute", "aten::swapaxes", "aten::t", "aten::narrow",
        "aten::unsqueeze", "aten::expand", "aten::expand_as", "aten::as_strided", "aten::alias",
        "aten::detach", "aten::detach_", "aten::positive", "aten::chunk", "aten::split_with_sizes"})
    t.add(name, metadata_kernel);
  add_overloads(t, "aten::unflatten", {"int"}, metadata_kernel);
  add_overloads(t, "aten::transpose", {"int"}, metadata_kernel);
  add_overloads(t, "aten::movedim", {"int", "intlist"}, metadata_kernel);
  add_overloads(t, "aten::select", {"int"}, metadata_kernel);
  add_overloads(t, "aten::slice", {"Tensor"}, metadata_kernel);
  add_overloads(t, "aten::squeeze", {"", "dim"}, metadata_kernel);
  add_overloads(t, "aten::unbind", {"int"}, metadata_kernel);
  add_overloads(t, "aten::split", {"Tensor", "sizes", ""}, metadata_kernel);
  t.add("aten::narrow.Tensor", [](OpContext& cx, IValueList& args) {
    CONVOY_CHECK_KIND(kUnsupported, !cx.is_device(args[2].to_tensor()), cx.where(),
                      ": a start computed on the device is not supported; use an int start");
    return metadata_kernel(cx, args);
  });

  t.add("aten::reshape", [](OpContext& cx, IValueList& args) {
    return IValueList{reshape(cx, args[0].to_tensor(), args[1].to_int_list(), "aten::reshape")};
  });
  t.add("aten::reshape_as", [](OpContext& cx, IValueList& args) {
    const Shape& s = args[1].to_tensor().sizes();
    return IValueList{
        reshape(cx, args[0].to_tensor(), std::vector<int64_t>(s.begin(), s.end()), "aten::reshape_as")};
  });
  t.add("aten::flatten.using_ints", [](OpContext& cx, IValueList& args) {
    const Tensor& self = args[0].to_tensor();
    if (self.dim() == 0) return IValueList{reshape(cx, self, {1}, "aten::flatten")};
    int64_t start = wrap_dim(args[1].to_int(), self.dim(), "aten::flatten");
    int64_t end = wrap_dim(args[2].to_int(), self.dim(), "aten::flatten");
    CONVOY_CHECK(start <= end, "aten::flatten: start_dim (", start, ") cannot come after end_dim (", end,
                 ")");
    std::vector<int64_t> shape(self.sizes().begin(), self.sizes().begin() + start);
    int64_t merged = 1;
    for (int64_t d = start; d <= end; ++d) merged *= self.sizes()[static_cast<size_t>(d)];
    shape.push_back(merged);
    shape.insert(shape.end(), self.sizes().begin() + end + 1, self.sizes().end());
    return IValueList{reshape(cx, self, shape, "aten::flatten")};
  });
  t.add("aten::contiguous", [](OpContext& cx, IValueList& args) {
    return IValueList{contiguous(cx, cx.to_device(args[0].to_tensor()))};
  });
  t.add("aten::clone",
        [](OpContext& cx, IValueList& args) { return IValueList{contiguous_copy(cx, args[0].to_tensor())}; });

  t.add("aten::to.dtype", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), optional_dtype_arg(a[1], "aten::to"), a[3].to_bool())};
  });
  t.add("aten::to.device", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), optional_dtype_arg(a[2], "aten::to"), a[4].to_bool())};
  });
  t.add("aten::to.other", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), a[1].to_tensor().dtype(), a[3].to_bool())};
  });
  t.add("aten::to.dtype_layout", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), optional_dtype_arg(a[1], "aten::to"), a[6].to_bool())};
  });
  t.add("aten::to.prim_Device", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), optional_dtype_arg(a[2], "aten::to"), a[4].to_bool())};
  });
  t.add("aten::to.prim_dtype", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), optional_dtype_arg(a[1], "aten::to"), a[3].to_bool())};
  });
  t.add("aten::to.prim_other", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), std::nullopt, a[2].to_bool())};
  });
  t.add("aten::type_as", [](OpContext& cx, IValueList& a) {
    return IValueList{convert(cx, a[0].to_tensor(), a[1].to_tensor().dtype(), false)};
  });

  for (const char* name : {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"}) {
    for (bool inplace : {false, true}) {
      t.add(std::string("aten::") + name + (inplace ? "_" : ""), [](OpContext& cx, IValueList& args) {
        double p = args[1].to_double();
        bool train = args[2].to_bool();
        CONVOY_CHECK(p >= 0 && p <= 1, cx.where(),
                     ": dropout probability has to be between 0 and 1, but got ", p);
        CONVOY_CHECK_KIND(kUnsupported, !train || p == 0, cx.where(), " with train=True (p=", p,
                          ") is not supported: Convoy runs inference only; export the model in eval() mode");
        return IValueList{args[0]};
      });
    }
  }
}

}  // namespace convoy::opencl
