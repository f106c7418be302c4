// A compiled plan: the instructions of one input signature, split into segments at the points where
// the host must read a value back from the device (a data-dependent branch), and the memory plan that
// gives every arena allocation its offset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "opencl/gemm/gemm.h"
#include "runtime/ivalue.h"

namespace convoy::opencl {

enum class Space : uint8_t {
  kArena,   // the plan's activation arena; id is an allocation id
  kWeight,  // the executor's weight buffers; id is a weight index
  kMeta,    // the segment's metadata buffer (sizes and strides kernels read)
};

struct BufferRef {
  Space space = Space::kArena;
  int id = -1;
  friend bool operator==(const BufferRef&, const BufferRef&) = default;
};

struct KernelArgSpec {
  enum class Kind : uint8_t { kBuffer, kI32, kI64, kF32, kF64, kLocal, kMeta };
  Kind kind = Kind::kI32;
  BufferRef buffer;         // kBuffer
  int64_t view_offset = 0;  // kBuffer: element offset of the view; kMeta: index into Instruction::meta
  size_t element_size = 0;  // kBuffer
  int64_t i = 0;            // kI32, kI64; kLocal: bytes
  double f = 0;             // kF32, kF64
};

struct Instruction {
  enum class Kind : uint8_t { kKernel, kGemm, kWrite };
  Kind kind = Kind::kKernel;
  std::string what;  // "code/x.py:12: aten::conv2d": names the instruction in errors and reports

  // kKernel
  std::string file, kernel_name, options;
  std::vector<KernelArgSpec> args;
  std::vector<int64_t> meta;  // this launch's block of the segment's metadata buffer
  std::vector<size_t> global, local;

  // kGemm: buffers come from the refs; offsets in `gemm` are view offsets in elements
  gemm::GemmArgs gemm;
  BufferRef a, b, c, bias;

  // kWrite: bytes (a plan constant) or graph input `input_index`, written at dst + dst_offset (bytes)
  BufferRef dst;
  int64_t dst_offset = 0;
  std::shared_ptr<const std::vector<uint8_t>> data;
  int input_index = -1;
  size_t bytes = 0;
};

// One arena allocation of a traced path. Times are instruction indices along the path: the
// allocation is needed by instructions in [birth, death).
struct AllocationRecord {
  int64_t bytes = 0;
  int64_t birth = 0;
  int64_t death = 0;  // kAlive when still in use where the trace stopped
  bool scratch = false;
  std::string what;
  static constexpr int64_t kAlive = INT64_MAX;
};

// Greedy-by-size placement (largest first, each at the lowest offset where it overlaps no placed
// allocation that is live at the same time). `offsets` holds -1 for allocations to place and the fixed
// offset of those placed earlier; returns the arena size needed. Offsets are multiples of `alignment`.
int64_t place_allocations(const std::vector<AllocationRecord>& allocs, std::vector<int64_t>& offsets,
                          int64_t alignment);

// What reading a guard value back means: the element at `buffer` + `offset` bytes, of `dtype`.
struct GuardRead {
  BufferRef buffer;
  int64_t view_offset = 0;  // elements
  DType dtype = DType::kFloat32;
  std::string what;
};

// A graph output: a host value fixed by the plan, a device tensor to read back, or a tuple/list of them.
struct OutputSpec {
  enum class Kind : uint8_t { kHost, kDevice, kTuple, kList };
  Kind kind = Kind::kHost;
  IValue host;
  BufferRef buffer;
  int64_t view_offset = 0;  // elements; device outputs are contiguous
  DType dtype = DType::kFloat32;
  Shape sizes;
  std::vector<OutputSpec> items;
};

// An int32 flag a kernel sets on bad device data; read after the run (OpContext::check_flag_after_run).
struct FlagCheck {
  BufferRef buffer;
  int64_t view_offset = 0;  // elements
  std::string message;
};

// Memory statistics of a traced path.
struct MemoryReport {
  int64_t arena_bytes = 0;
  int64_t largest_pair_bytes[2] = {0, 0};  // the two largest allocations live at the same time
  std::string largest_pair_what[2];
  int64_t largest_scratch_bytes = 0;
  int64_t allocations = 0;
  int64_t instructions = 0;
  int64_t weight_bytes = 0;
};
MemoryReport memory_report(const std::vector<AllocationRecord>& allocs, int64_t arena_bytes);

}  // namespace convoy::opencl
