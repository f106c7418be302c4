// Builds the instructions of a plan by walking the graph once with concrete input shapes: host-side
// scalar work (aten::size, int arithmetic, lists, small host tensors) runs on the host through the
// registry's reference kernels, exactly as the reference executor runs it, while every tensor op is
// lowered by its OpenCL implementation into kernel launches on device tensors whose memory is
// allocated from the plan's arena. Where the host needs a value computed on the device (a branch on
// `x.sum() > 0`), the trace records a guard and either continues with the value it was given for that
// guard or stops there.
#pragma once

#include <map>
#include <unordered_set>
#include <vector>

#include "opencl/op_context.h"
#include "opencl/plan.h"
#include "opencl/weights.h"
#include "runtime/graph/ir.h"

namespace convoy::opencl {

// For every block of a graph: the values defined in it whose last use is its node i.
struct ReleasePlan {
  std::map<const Block*, std::vector<std::vector<int>>> after_node;
  std::map<const Block*, std::vector<int>> defined;  // params and node outputs of the block itself
};
ReleasePlan compute_release_plan(const Graph& graph);

// How the tracer treats a registry op.
enum class OpCategory : uint8_t {
  kScalar,    // no tensors in its schema: lists, ints, strings; runs on the host
  kMetadata,  // reads only a tensor's sizes, dtype or device: runs on the host on device tensors too
  kReadback,  // reads a tensor's one value into a host scalar (aten::Int, aten::Bool, aten::item)
  kTensor,    // a tensor op: an OpenCL implementation, or host work when every tensor is small and on host
};
OpCategory categorize(const OpOverload& op);

// A guard's value as read back: the element's bytes.
struct GuardValue {
  std::vector<uint8_t> bytes;
  std::string key() const;  // hex, what continuations are keyed by
};

struct TraceResult {
  std::vector<Instruction> instructions;
  std::vector<size_t> guard_positions;  // instructions before guard i
  std::vector<GuardRead> guards;        // every guard reached; the last one is new when !complete
  std::vector<AllocationRecord> allocs;
  bool complete = false;
  std::vector<OutputSpec> outputs;  // when complete
  std::vector<FlagCheck> flags;     // when complete: every flag registered along the path
};

struct TraceSetup {
  const Graph* graph = nullptr;
  const OpenCLOpTable* table = nullptr;
  WeightStore* weights = nullptr;
  const DeviceInfo* device = nullptr;
  const ReleasePlan* releases = nullptr;
  const std::unordered_set<const Storage*>* constant_storages = nullptr;
};

TraceResult trace_plan(const TraceSetup& setup, const std::vector<IValue>& inputs,
                       const std::vector<GuardValue>& known_guards);

// Host tensors with at most this many elements count as scalar work when an op's inputs are all such.
constexpr int64_t kSmallHostElements = 64;

}  // namespace convoy::opencl
