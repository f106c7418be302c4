// What an OpenCL op implementation sees while a plan is built: the node it implements, device
// tensors (convoy::Tensor views whose storage lives in a plan's arena or in the executor's weights) and
// calls that append instructions to the plan. Nothing here runs on the device: kernels are launched
// when the finished plan runs, with every size, offset and launch geometry fixed now.
//
// An op implementation receives one IValue per schema argument (defaults filled in). Tensor arguments
// are either device tensors or small host tensors (results of host-side scalar work, such as
// prim::NumToTensor); an implementation asks to_device() for a device tensor when it needs a buffer, or
// reads a 0-dim host tensor as a kernel scalar.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "opencl/device.h"
#include "opencl/gemm/gemm.h"
#include "runtime/graph/ir.h"
#include "runtime/ivalue.h"

namespace convoy::opencl {

// Local (work-group shared) memory of a kernel argument.
struct LocalMemory {
  size_t bytes = 0;
};
// Sizes and strides a kernel reads from the plan's metadata buffer: becomes two kernel arguments,
// the buffer and the int offset of this block in it.
struct MetaBlock {
  std::vector<int64_t> values;
};
// A device tensor argument becomes two kernel arguments: its buffer and its element offset (a long).
using KernelArgValue = std::variant<Tensor, int32_t, int64_t, float, double, LocalMemory, MetaBlock>;

struct KernelLaunch {
  std::string file;     // "elementwise.cl"
  std::string kernel;   // "binary_strided"
  std::string options;  // build options: "-DOP_ADD -DA_T=float ..."
  std::vector<KernelArgValue> args;
  std::vector<size_t> global;  // 1 to 3 dims; a launch with an empty dim is dropped
  std::vector<size_t> local;   // empty: the driver chooses
};

// A float32 GEMM whose operands are device tensors: the GemmArgs' buffers are filled from the tensors
// when the plan is bound, and each *_offset in `args` is added to the tensor's own element offset.
struct GemmCall {
  gemm::GemmArgs args;
  Tensor a, b, c, bias;  // bias may be undefined
};

class OpContext {
 public:
  virtual ~OpContext() = default;

  virtual const Node& node() const = 0;
  // "code/__torch__/x.py:12: aten::add.Tensor": the prefix of every error an op raises.
  virtual std::string where() const = 0;
  virtual const DeviceInfo& device() const = 0;

  virtual bool is_device(const Tensor& t) const = 0;
  virtual bool is_weight(const Tensor& t) const = 0;
  // The device tensor for `t`: itself when already on the device; a model constant is uploaded once
  // per executor; any other host tensor becomes a plan constant written at its place in each run.
  virtual Tensor to_device(const Tensor& t) = 0;
  // A new, uninitialised, contiguous arena tensor, released when the last view of it is dropped.
  virtual Tensor empty(const Shape& sizes, DType dtype) = 0;
  // Like empty(), counted in the plan report as convolution scratch.
  virtual Tensor scratch(const Shape& sizes, DType dtype) = 0;
  // A device weight computed once per executor from model constants (e.g. a batch-norm folded into a
  // convolution's weight): `make` returns the host tensor, called only on the first request of `key`.
  virtual Tensor derived_weight(const std::string& key, const std::function<Tensor()>& make) = 0;
  // Checks that `t` may be written (not a model constant) and returns its device view; a small host
  // tensor written by a device op moves to the device for the rest of the plan.
  virtual Tensor writable(const Tensor& t) = 0;

  virtual void launch(KernelLaunch launch) = 0;
  virtual void gemm(const GemmCall& call) = 0;

  // Device kernels cannot raise. An op that detects invalid input on the device (an embedding index out
  // of range) zeroes `flag`, an int32 device tensor, has its kernels set flag[0] nonzero on the error
  // (and later elements to details), and calls this: the executor keeps the flag alive, reads it back
  // after each run and throws kInvalidInput with `message` and the flag's values when flag[0] != 0.
  // Returns false where flags are not read back (the op then cannot report the error).
  virtual bool check_flag_after_run(const Tensor& flag, const std::string& message) { return false; }

  // The value of a one-element device tensor on the host, for an op whose result's shape depends on
  // device data (the count of a boolean mask): as at a branch on tensor data, the plan splits here and
  // continues with the segment compiled for the value read. Returns a host tensor of t's dtype and shape.
  virtual Tensor read_back(const Tensor& t) {
    fail(ErrorKind::kUnsupported, where(), ": needs the value of ", t.describe(),
         " on the host, which this context does not read back");
  }

  // The registry's reference kernel of this node on host arguments; for ops that are scalar work
  // when every tensor is a small host tensor.
  virtual IValueList run_reference(IValueList& args) = 0;
};

using OpenCLOp = std::function<IValueList(OpContext& cx, IValueList& args)>;

// OpenCL implementations keyed by the overload's full name ("aten::add.Tensor", "aten::relu").
class OpenCLOpTable {
 public:
  void add(const std::string& full_name, OpenCLOp op);
  const OpenCLOp* find(const std::string& full_name) const;
  std::vector<std::string> names() const;
  size_t size() const { return ops_.size(); }

 private:
  std::map<std::string, OpenCLOp> ops_;
};

// Each family lives in one file under opencl/ops/.
void register_opencl_view_ops(OpenCLOpTable& table);         // views.cpp: views, reshape, split, ...
void register_opencl_elementwise_ops(OpenCLOpTable& table);  // elementwise.cpp
void register_opencl_reduction_ops(OpenCLOpTable& table);    // reduction.cpp
void register_opencl_shape_ops(OpenCLOpTable& table);        // shape.cpp: cat, stack, pad, index, ...
void register_opencl_factory_ops(OpenCLOpTable& table);      // factories.cpp
void register_opencl_nn_ops(OpenCLOpTable& table);           // nn.cpp: conv, pools, norms, embedding
void register_opencl_upsample_ops(OpenCLOpTable& table);     // upsample.cpp: interpolation
void register_opencl_linalg_ops(OpenCLOpTable& table);       // linalg.cpp: linear, matmul, bmm, ...
void register_opencl_sequence_ops(OpenCLOpTable& table);     // sequence.cpp: rnn, attention

OpenCLOpTable make_opencl_op_table();

}  // namespace convoy::opencl
