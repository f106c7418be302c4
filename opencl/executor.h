// The OpenCL executor: runs a Graph on one OpenCL device with the same contract as ReferenceExecutor
// (host IValues in, host IValues out).
//
// The first run with a given input signature (dtypes and shapes of the tensor inputs, values of the
// others) compiles a plan: the graph is traced with those shapes (opencl/tracer.h) into a linear list
// of kernel launches and GEMMs with every argument and launch geometry fixed, activations get offsets
// in one device arena from their lifetimes (greedy by size), and every program is built or loaded from
// the disk cache. Later runs with that signature only enqueue the instructions: no buffer is created
// and no program is built. Where the host must see a device value (a branch on tensor data), the plan
// is split: the run reads that one scalar back and continues with the segment compiled for that value,
// compiling it the first time the value is seen.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "opencl/device.h"
#include "opencl/op_context.h"
#include "opencl/plan.h"
#include "opencl/tracer.h"
#include "opencl/weights.h"
#include "runtime/graph/ir.h"
#include "runtime/ivalue.h"

namespace convoy::opencl {

class OpenCLExecutor {
 public:
  // Checks that every node can run on OpenCL (an op with an OpenCL implementation, host-side scalar
  // work, or a structural prim); a node that cannot fails here, naming the op and its source line.
  OpenCLExecutor(const Graph& graph, Device& device);
  ~OpenCLExecutor();
  OpenCLExecutor(const OpenCLExecutor&) = delete;
  OpenCLExecutor& operator=(const OpenCLExecutor&) = delete;

  // Runs the graph on one set of inputs (one per graph input); returns one value per output. Not
  // thread-safe: one run at a time per executor.
  std::vector<IValue> run(const std::vector<IValue>& inputs);

  // Per compiled input signature: segments, instructions, arena size, the two largest activations live
  // at the same time and the largest convolution scratch; plus the weights uploaded.
  std::string plan_report() const;
  // Memory of the plan compiled for `inputs`' signature (all its segments so far); nullopt when none.
  std::optional<MemoryReport> memory(const std::vector<IValue>& inputs) const;

  Device& device() { return device_; }

  // Profiling: when on, every instruction is waited for and timed (slower runs); profile_report() lists
  // the time per kernel or GEMM shape, largest first, over every run since profiling was turned on.
  // CONVOY_OPENCL_PROFILE=1 in the environment turns it on at construction.
  void set_profiling(bool on);
  bool profiling() const { return profiling_; }
  std::string profile_report(size_t top = 25) const;

 private:
  struct Segment;
  struct Plan;

  Segment* compile_segment(Plan& plan, Segment* parent, const std::vector<GuardValue>& path,
                           const std::vector<IValue>& inputs);
  void bind(Plan& plan, Segment& segment);
  void grow_arena(Plan& plan, int64_t bytes);
  void execute(Plan& plan, Segment& segment, const std::vector<Tensor>& dense_inputs);
  GuardValue read_guard(Plan& plan, Segment& segment);
  IValue read_output(Plan& plan, Segment& segment, const OutputSpec& spec);
  void check_flags(Plan& plan, Segment& segment);
  cl_mem buffer_of(Plan& plan, const BufferRef& ref) const;
  int64_t byte_offset_of(const Segment& segment, const BufferRef& ref) const;
  gemm::GemmDispatcher& dispatcher();

  const Graph& graph_;
  Device& device_;
  OpenCLOpTable table_;
  ReleasePlan releases_;
  std::unordered_set<const Storage*> constant_storages_;
  WeightStore weights_;
  std::unique_ptr<gemm::GemmDispatcher> dispatcher_;
  std::map<std::string, std::unique_ptr<Plan>> plans_;
  bool profiling_ = false;
  struct ProfileEntry {
    double seconds = 0;
    int64_t calls = 0;
  };
  std::map<std::string, ProfileEntry> profile_;
};

// What plans are keyed by: "float32[8, 3, 224, 224]; int 5".
std::string input_signature(const std::vector<IValue>& inputs);

// What every caller that owns its graph wants: the OpenCL fusion passes (opencl/ops/nn.h: conv →
// batch_norm → activation, linear → activation, in every nested block) run on `graph`, then the
// executor for it. One place, so no caller forgets a pass.
std::unique_ptr<OpenCLExecutor> make_fused_executor(Graph& graph, Device& device);

}  // namespace convoy::opencl
