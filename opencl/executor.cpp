#include "opencl/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "opencl/ops/nn.h"
#include "opencl/program_cache.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

constexpr int64_t kArenaAlignment = 256;

std::string mib(int64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return out.str();
}

}  // namespace

std::string input_signature(const std::vector<IValue>& inputs) {
  std::string key;
  for (const IValue& v : inputs) {
    if (!key.empty()) key += "; ";
    if (v.is_tensor())
      key += v.to_tensor().describe();
    else
      key += str_cat(v.kind_name(), " ", v.repr());
  }
  return key;
}

struct OpenCLExecutor::Segment {
  Segment* parent = nullptr;
  size_t first_instruction = 0;  // position of instructions[0] along the path
  std::vector<Instruction> instructions;
  std::vector<int64_t> offsets;  // arena offset of every allocation of the path up to this segment's end
  std::vector<AllocationRecord> allocs;
  bool final = false;
  GuardRead guard;
  std::vector<OutputSpec> outputs;
  std::vector<FlagCheck> flags;
  std::map<std::string, std::unique_ptr<Segment>> children;

  // Bound state.
  cl_mem meta = nullptr;
  std::vector<int64_t> meta_offsets;
  std::vector<cl_kernel> kernels;
  std::vector<gemm::GemmArgs> gemms;
  int64_t arena_needed = 0;

  ~Segment() {
    for (cl_kernel k : kernels)
      if (k) clReleaseKernel(k);
    if (meta) clReleaseMemObject(meta);
  }
};

struct OpenCLExecutor::Plan {
  std::string signature;
  cl_mem arena = nullptr;
  int64_t arena_bytes = 0;
  std::unique_ptr<Segment> root;
  size_t segments = 0;

  ~Plan() {
    root.reset();
    if (arena) clReleaseMemObject(arena);
  }

  template <typename Fn>
  void for_each_segment(Fn&& fn) {
    std::vector<Segment*> stack;
    if (root) stack.push_back(root.get());
    while (!stack.empty()) {
      Segment* s = stack.back();
      stack.pop_back();
      fn(*s);
      for (auto& [key, child] : s->children) stack.push_back(child.get());
    }
  }
};

OpenCLExecutor::OpenCLExecutor(const Graph& graph, Device& device)
    : graph_(graph), device_(device), table_(make_opencl_op_table()), weights_(device) {
  for_each_node(const_cast<Block*>(graph.top()), [&](Node* n) {
    if (n->kind == "prim::Constant" && n->constant.is_tensor() && n->constant.to_tensor().defined())
      constant_storages_.insert(n->constant.to_tensor().storage().get());
    if (!n->op) {
      CONVOY_CHECK_KIND(kUnsupported, is_structural_prim(n->kind), n->source.str(), ": '", n->kind,
                        "' cannot run on OpenCL");
      return;
    }
    if (categorize(*n->op) != OpCategory::kTensor) return;
    CONVOY_CHECK_KIND(kUnsupported, table_.find(n->op->schema.full_name()) != nullptr, n->source.str(),
                      ": op '", n->op->schema.full_name(), "' has no OpenCL implementation");
  });
  releases_ = compute_release_plan(graph);
  if (const char* p = std::getenv("CONVOY_OPENCL_PROFILE"); p && *p && std::string(p) != "0")
    profiling_ = true;
}

OpenCLExecutor::~OpenCLExecutor() {
  plans_.clear();
  dispatcher_.reset();
}

gemm::GemmDispatcher& OpenCLExecutor::dispatcher() {
  if (!dispatcher_) dispatcher_ = std::make_unique<gemm::GemmDispatcher>(device_);
  return *dispatcher_;
}

cl_mem OpenCLExecutor::buffer_of(Plan& plan, const BufferRef& ref) const {
  switch (ref.space) {
    case Space::kArena:
      return plan.arena;
    case Space::kWeight:
      return weights_.buffer(ref.id);
    case Space::kMeta:
      break;
  }
  fail(ErrorKind::kInternal, "no buffer for a metadata reference");
}

int64_t OpenCLExecutor::byte_offset_of(const Segment& segment, const BufferRef& ref) const {
  if (ref.space != Space::kArena) return 0;
  return segment.offsets.at(static_cast<size_t>(ref.id));
}

std::vector<IValue> OpenCLExecutor::run(const std::vector<IValue>& inputs) {
  const auto& params = graph_.inputs();
  CONVOY_CHECK(inputs.size() == params.size(), "the model takes ", params.size(), " inputs but ",
               inputs.size(), " were given");
  std::string signature = input_signature(inputs);
  std::unique_ptr<Plan>& slot = plans_[signature];
  if (!slot) {
    slot = std::make_unique<Plan>();
    slot->signature = signature;
  }
  Plan& plan = *slot;
  std::vector<Tensor> dense_inputs(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].is_tensor()) dense_inputs[i] = inputs[i].to_tensor().contiguous();

  std::vector<GuardValue> path;
  Segment* segment = plan.root ? plan.root.get() : compile_segment(plan, nullptr, path, inputs);
  while (true) {
    execute(plan, *segment, dense_inputs);
    if (segment->final) break;
    path.push_back(read_guard(plan, *segment));
    auto it = segment->children.find(path.back().key());
    segment = it != segment->children.end() ? it->second.get() : compile_segment(plan, segment, path, inputs);
  }
  std::vector<IValue> out;
  for (const OutputSpec& spec : segment->outputs) out.push_back(read_output(plan, *segment, spec));
  check_flags(plan, *segment);
  return out;
}

OpenCLExecutor::Segment* OpenCLExecutor::compile_segment(Plan& plan, Segment* parent,
                                                         const std::vector<GuardValue>& path,
                                                         const std::vector<IValue>& inputs) {
  TraceSetup setup;
  setup.graph = &graph_;
  setup.table = &table_;
  setup.weights = &weights_;
  setup.device = &device_.info();
  setup.releases = &releases_;
  setup.constant_storages = &constant_storages_;
  TraceResult trace = trace_plan(setup, inputs, path);

  auto segment = std::make_unique<Segment>();
  segment->parent = parent;
  const size_t begin = path.empty() ? 0 : trace.guard_positions.at(path.size() - 1);
  CONVOY_ASSERT(!parent || begin == parent->first_instruction + parent->instructions.size(),
                "a re-traced prefix has ", begin, " instructions, the compiled one ",
                parent->first_instruction + parent->instructions.size());
  segment->first_instruction = begin;
  segment->instructions.assign(
      std::make_move_iterator(trace.instructions.begin() + static_cast<int64_t>(begin)),
      std::make_move_iterator(trace.instructions.end()));
  segment->final = trace.complete;
  if (trace.complete) {
    segment->outputs = std::move(trace.outputs);
    segment->flags = std::move(trace.flags);
  } else
    segment->guard = trace.guards.back();

  // Allocations made before this segment keep the offsets they were given; the new ones are placed
  // around them, knowing now when the earlier ones die.
  segment->offsets.assign(trace.allocs.size(), -1);
  if (parent) {
    CONVOY_ASSERT(parent->offsets.size() <= trace.allocs.size(), "re-trace lost allocations");
    for (size_t i = 0; i < parent->offsets.size(); ++i) {
      CONVOY_ASSERT(parent->allocs[i].bytes == trace.allocs[i].bytes, "re-traced allocation ", i, " differs");
      segment->offsets[i] = parent->offsets[i];
    }
  }
  segment->arena_needed = place_allocations(trace.allocs, segment->offsets, kArenaAlignment);
  segment->allocs = std::move(trace.allocs);

  // Programs, kernels, metadata and GEMM warm-up: everything a run needs, done now.
  std::vector<int64_t> meta;
  segment->meta_offsets.assign(segment->instructions.size(), 0);
  for (size_t i = 0; i < segment->instructions.size(); ++i) {
    const Instruction& ins = segment->instructions[i];
    segment->meta_offsets[i] = static_cast<int64_t>(meta.size());
    meta.insert(meta.end(), ins.meta.begin(), ins.meta.end());
  }
  if (!meta.empty())
    segment->meta = device_.create_buffer(meta.size() * sizeof(int64_t), "plan metadata",
                                          CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, meta.data());
  segment->kernels.assign(segment->instructions.size(), nullptr);
  segment->gemms.assign(segment->instructions.size(), gemm::GemmArgs{});
  for (size_t i = 0; i < segment->instructions.size(); ++i) {
    const Instruction& ins = segment->instructions[i];
    if (ins.kind != Instruction::Kind::kKernel) continue;
    cl_program program;
    try {
      program = device_.programs().get_embedded(ins.file, ins.options);
    } catch (const Error& e) {
      fail(e.kind(), ins.what, ": ", e.what());
    }
    segment->kernels[i] = device_.programs().create_kernel(program, ins.kernel_name, ins.what);
  }
  Segment* raw = segment.get();
  if (parent)
    parent->children[path.back().key()] = std::move(segment);
  else
    plan.root = std::move(segment);
  plan.segments++;
  if (raw->arena_needed > plan.arena_bytes) grow_arena(plan, raw->arena_needed);
  bind(plan, *raw);
  for (size_t i = 0; i < raw->instructions.size(); ++i) {
    if (raw->instructions[i].kind != Instruction::Kind::kGemm) continue;
    try {
      dispatcher().warm_up(raw->gemms[i]);
    } catch (const Error& e) {
      fail(e.kind(), raw->instructions[i].what, ": ", e.what());
    }
  }
  return raw;
}

void OpenCLExecutor::grow_arena(Plan& plan, int64_t bytes) {
  cl_mem grown =
      device_.create_buffer(static_cast<size_t>(bytes), "activation arena (" + plan.signature + ")");
  if (plan.arena) {
    // A new segment compiled in the middle of a run may need more than the arena holds; what earlier
    // segments of this run left in it is still live.
    cl_check(clEnqueueCopyBuffer(device_.queue(), plan.arena, grown, 0, 0,
                                 static_cast<size_t>(plan.arena_bytes), 0, nullptr, nullptr),
             "clEnqueueCopyBuffer", "growing the activation arena");
    device_.finish("growing the activation arena");
    clReleaseMemObject(plan.arena);
  }
  plan.arena = grown;
  plan.arena_bytes = bytes;
  plan.for_each_segment([&](Segment& s) {
    if (!s.kernels.empty()) bind(plan, s);
  });
}

void OpenCLExecutor::bind(Plan& plan, Segment& segment) {
  for (size_t i = 0; i < segment.instructions.size(); ++i) {
    const Instruction& ins = segment.instructions[i];
    if (ins.kind == Instruction::Kind::kGemm) {
      gemm::GemmArgs g = ins.gemm;
      g.a = buffer_of(plan, ins.a);
      g.b = buffer_of(plan, ins.b);
      g.c = buffer_of(plan, ins.c);
      g.a_offset += static_cast<size_t>(byte_offset_of(segment, ins.a) / 4);
      g.b_offset += static_cast<size_t>(byte_offset_of(segment, ins.b) / 4);
      g.c_offset += static_cast<size_t>(byte_offset_of(segment, ins.c) / 4);
      if (g.epilogue.bias_axis != gemm::BiasAxis::kNone) {
        g.epilogue.bias = buffer_of(plan, ins.bias);
        g.epilogue.bias_offset += static_cast<size_t>(byte_offset_of(segment, ins.bias) / 4);
      }
      segment.gemms[i] = g;
      continue;
    }
    if (ins.kind != Instruction::Kind::kKernel) continue;
    cl_kernel kernel = segment.kernels[i];
    cl_uint index = 0;
    auto set = [&](size_t size, const void* value) {
      cl_check(clSetKernelArg(kernel, index, size, value), "clSetKernelArg",
               str_cat(ins.what, ": ", ins.kernel_name, " argument ", index));
      ++index;
    };
    for (const KernelArgSpec& a : ins.args) {
      switch (a.kind) {
        case KernelArgSpec::Kind::kBuffer: {
          cl_mem mem = buffer_of(plan, a.buffer);
          cl_long offset =
              byte_offset_of(segment, a.buffer) / static_cast<int64_t>(a.element_size) + a.view_offset;
          set(sizeof(cl_mem), &mem);
          set(sizeof(cl_long), &offset);
          break;
        }
        case KernelArgSpec::Kind::kMeta: {
          cl_int offset = static_cast<cl_int>(segment.meta_offsets[i] + a.view_offset);
          set(sizeof(cl_mem), &segment.meta);
          set(sizeof(cl_int), &offset);
          break;
        }
        case KernelArgSpec::Kind::kI32: {
          cl_int v = static_cast<cl_int>(a.i);
          set(sizeof(v), &v);
          break;
        }
        case KernelArgSpec::Kind::kI64: {
          cl_long v = a.i;
          set(sizeof(v), &v);
          break;
        }
        case KernelArgSpec::Kind::kF32: {
          cl_float v = static_cast<cl_float>(a.f);
          set(sizeof(v), &v);
          break;
        }
        case KernelArgSpec::Kind::kF64: {
          cl_double v = a.f;
          set(sizeof(v), &v);
          break;
        }
        case KernelArgSpec::Kind::kLocal:
          set(static_cast<size_t>(a.i), nullptr);
          break;
      }
    }
  }
}

void OpenCLExecutor::execute(Plan& plan, Segment& segment, const std::vector<Tensor>& dense_inputs) {
  cl_command_queue queue = device_.queue();
  if (profiling_) device_.finish("profiling");
  for (size_t i = 0; i < segment.instructions.size(); ++i) {
    const Instruction& ins = segment.instructions[i];
    auto start = std::chrono::steady_clock::now();
    switch (ins.kind) {
      case Instruction::Kind::kKernel: {
        size_t global[3], local[3];
        for (size_t d = 0; d < ins.global.size(); ++d) global[d] = ins.global[d];
        for (size_t d = 0; d < ins.local.size(); ++d) local[d] = ins.local[d];
        cl_check(
            clEnqueueNDRangeKernel(queue, segment.kernels[i], static_cast<cl_uint>(ins.global.size()),
                                   nullptr, global, ins.local.empty() ? nullptr : local, 0, nullptr, nullptr),
            "clEnqueueNDRangeKernel", str_cat(ins.what, ": ", ins.kernel_name));
        break;
      }
      case Instruction::Kind::kGemm:
        try {
          dispatcher().enqueue(segment.gemms[i]);
        } catch (const Error& e) {
          fail(e.kind(), ins.what, ": ", e.what());
        }
        break;
      case Instruction::Kind::kWrite: {
        if (ins.bytes == 0) break;
        const void* src = ins.data ? static_cast<const void*>(ins.data->data())
                                   : dense_inputs.at(static_cast<size_t>(ins.input_index)).raw_data();
        size_t offset = static_cast<size_t>(byte_offset_of(segment, ins.dst) + ins.dst_offset);
        cl_check(clEnqueueWriteBuffer(queue, buffer_of(plan, ins.dst), CL_FALSE, offset, ins.bytes, src, 0,
                                      nullptr, nullptr),
                 "clEnqueueWriteBuffer", ins.what);
        break;
      }
    }
    if (profiling_) {
      device_.finish(ins.what);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string key;
      if (ins.kind == Instruction::Kind::kKernel)
        key = str_cat(ins.file, ":", ins.kernel_name, " ", ins.options.substr(0, ins.options.find(' ')));
      else if (ins.kind == Instruction::Kind::kGemm)
        key = str_cat("gemm ", ins.gemm.m, "x", ins.gemm.n, "x", ins.gemm.k, " batch ", ins.gemm.batch_count);
      else
        key = "write";
      ProfileEntry& e = profile_[key];
      e.seconds += seconds;
      e.calls++;
    }
  }
}

void OpenCLExecutor::set_profiling(bool on) {
  profiling_ = on;
  profile_.clear();
}

std::string OpenCLExecutor::profile_report(size_t top) const {
  std::vector<std::pair<std::string, ProfileEntry>> entries(profile_.begin(), profile_.end());
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& [key, e] : entries) total += e.seconds;
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << "profile: " << total << " s in " << entries.size()
      << " kinds\n";
  for (size_t i = 0; i < entries.size() && i < top; ++i)
    out << "  " << std::setw(9) << entries[i].second.seconds << " s " << std::setw(6)
        << entries[i].second.calls << "x  " << entries[i].first << "\n";
  return out.str();
}

GuardValue OpenCLExecutor::read_guard(Plan& plan, Segment& segment) {
  const GuardRead& g = segment.guard;
  GuardValue v;
  v.bytes.resize(dtype_size(g.dtype));
  size_t offset = static_cast<size_t>(byte_offset_of(segment, g.buffer) +
                                      g.view_offset * static_cast<int64_t>(dtype_size(g.dtype)));
  cl_check(clEnqueueReadBuffer(device_.queue(), buffer_of(plan, g.buffer), CL_TRUE, offset, v.bytes.size(),
                               v.bytes.data(), 0, nullptr, nullptr),
           "clEnqueueReadBuffer", g.what);
  return v;
}

IValue OpenCLExecutor::read_output(Plan& plan, Segment& segment, const OutputSpec& spec) {
  switch (spec.kind) {
    case OutputSpec::Kind::kHost:
      return spec.host.is_tensor() ? IValue(spec.host.to_tensor().clone()) : spec.host;
    case OutputSpec::Kind::kDevice: {
      Tensor t = Tensor::empty(spec.sizes, spec.dtype);
      if (t.nbytes() == 0) return IValue(t);
      size_t offset = static_cast<size_t>(byte_offset_of(segment, spec.buffer) +
                                          spec.view_offset * static_cast<int64_t>(dtype_size(spec.dtype)));
      cl_check(clEnqueueReadBuffer(device_.queue(), buffer_of(plan, spec.buffer), CL_TRUE, offset, t.nbytes(),
                                   t.raw_data(), 0, nullptr, nullptr),
               "clEnqueueReadBuffer", "reading an output");
      return IValue(t);
    }
    case OutputSpec::Kind::kTuple:
    case OutputSpec::Kind::kList: {
      IValueList items;
      for (const OutputSpec& s : spec.items) items.push_back(read_output(plan, segment, s));
      return spec.kind == OutputSpec::Kind::kTuple ? IValue::tuple(std::move(items))
                                                   : IValue::list(std::move(items));
    }
  }
  return IValue();
}

void OpenCLExecutor::check_flags(Plan& plan, Segment& segment) {
  for (const FlagCheck& f : segment.flags) {
    cl_int values[3] = {0, 0, 0};
    size_t offset = static_cast<size_t>(byte_offset_of(segment, f.buffer) + f.view_offset * 4);
    cl_check(clEnqueueReadBuffer(device_.queue(), buffer_of(plan, f.buffer), CL_TRUE, offset, sizeof(values),
                                 values, 0, nullptr, nullptr),
             "clEnqueueReadBuffer", "reading an error flag");
    if (values[0] != 0)
      fail(ErrorKind::kInvalidInput, f.message, " (reported by the device: ", values[1], ", ", values[2],
           ")");
  }
}

std::optional<MemoryReport> OpenCLExecutor::memory(const std::vector<IValue>& inputs) const {
  auto it = plans_.find(input_signature(inputs));
  if (it == plans_.end() || !it->second->root) return std::nullopt;
  Plan& plan = *it->second;
  MemoryReport best;
  // The deepest segments see every allocation of their path; report the path with the largest pair.
  plan.for_each_segment([&](Segment& s) {
    MemoryReport r = memory_report(s.allocs, plan.arena_bytes);
    r.instructions = static_cast<int64_t>(s.first_instruction + s.instructions.size());
    if (r.largest_pair_bytes[0] + r.largest_pair_bytes[1] >=
        best.largest_pair_bytes[0] + best.largest_pair_bytes[1])
      best = r;
  });
  best.arena_bytes = plan.arena_bytes;
  best.weight_bytes = weights_.total_bytes();
  return best;
}

std::string OpenCLExecutor::plan_report() const {
  std::ostringstream out;
  out << "OpenCL plans on " << device_.info().name << ": " << plans_.size() << " input signature(s); weights "
      << mib(weights_.total_bytes()) << " in " << weights_.count() << " buffers\n";
  for (const auto& entry : plans_) {
    const auto& plan = entry.second;  // not a structured binding: clang 14 cannot capture those
    if (!plan->root) continue;
    MemoryReport best;
    size_t instructions = 0, kernels = 0, gemms = 0;
    plan->for_each_segment([&](Segment& s) {
      MemoryReport r = memory_report(s.allocs, plan->arena_bytes);
      if (r.largest_pair_bytes[0] + r.largest_pair_bytes[1] >=
          best.largest_pair_bytes[0] + best.largest_pair_bytes[1])
        best = r;
      instructions += s.instructions.size();
      for (const Instruction& ins : s.instructions) {
        kernels += ins.kind == Instruction::Kind::kKernel;
        gemms += ins.kind == Instruction::Kind::kGemm;
      }
    });
    int64_t pair = best.largest_pair_bytes[0] + best.largest_pair_bytes[1];
    out << "  [" << entry.first << "]: " << plan->segments << " segment(s), " << instructions
        << " instructions (" << kernels << " kernels, " << gemms << " GEMMs)\n";
    out << "    arena " << mib(plan->arena_bytes) << "; two largest live activations "
        << mib(best.largest_pair_bytes[0]) << " (" << best.largest_pair_what[0] << ") + "
        << mib(best.largest_pair_bytes[1]) << " (" << best.largest_pair_what[1] << ") = " << mib(pair)
        << "; largest convolution scratch " << mib(best.largest_scratch_bytes);
    if (pair + best.largest_scratch_bytes > 0)
      out << "; arena / (pair + scratch) = " << std::fixed << std::setprecision(2)
          << static_cast<double>(plan->arena_bytes) / static_cast<double>(pair + best.largest_scratch_bytes);
    out << "\n";
  }
  return out.str();
}

std::unique_ptr<OpenCLExecutor> make_fused_executor(Graph& graph, Device& device) {
  fuse_conv_batch_norm_activation(graph);
  fuse_linear_activation(graph);
  return std::make_unique<OpenCLExecutor>(graph, device);
}

}  // namespace convoy::opencl
