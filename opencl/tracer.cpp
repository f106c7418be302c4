#include "opencl/tracer.h"

#include <cstring>
#include <set>
#include <unordered_map>

#include "opencl/ops/launch_util.h"
#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/ops/registry.h"

namespace convoy::opencl {

namespace {

void collect_reads(const Node* node, std::set<int>& out) {
  for (const Value* v : node->inputs) out.insert(v->id);
  for (const auto& b : node->blocks) {
    for (const auto& n : b->nodes) collect_reads(n.get(), out);
    for (const Value* v : b->returns) out.insert(v->id);
  }
}

void plan_block(const Block* block, ReleasePlan& plan) {
  std::vector<int>& defined = plan.defined[block];
  std::set<int> local;
  for (const Value* v : block->params) local.insert(v->id);
  for (const auto& n : block->nodes)
    for (const Value* v : n->outputs) local.insert(v->id);
  defined.assign(local.begin(), local.end());

  // Only values defined in this block are released by it: an outer value read inside a loop body is
  // needed again by the next iteration, and its own block releases it after the loop.
  std::unordered_map<int, size_t> last_use;
  for (size_t i = 0; i < block->nodes.size(); ++i) {
    const Node* n = block->nodes[i].get();
    for (const Value* v : n->outputs) last_use.emplace(v->id, i);  // an unused output dies at once
    std::set<int> reads;
    collect_reads(n, reads);
    for (int id : reads)
      if (local.count(id)) last_use[id] = i;
  }
  std::set<int> keep;
  for (const Value* v : block->returns) keep.insert(v->id);
  auto& after = plan.after_node[block];
  after.assign(block->nodes.size(), {});
  for (const auto& [id, i] : last_use)
    if (!keep.count(id)) after[i].push_back(id);
  for (const auto& n : block->nodes)
    for (const auto& b : n->blocks) plan_block(b.get(), plan);
}

bool type_has_tensor(const Type& t) {
  if (t.kind == TypeKind::kTensor) return true;
  for (const TypePtr& c : t.contained)
    if (c && type_has_tensor(*c)) return true;
  return false;
}

// Scalar-category ops that only move values around, so a device tensor may pass through them.
bool moves_values_only(const std::string& name) {
  static const std::set<std::string> kOps = {
      "aten::append",        "aten::__getitem__", "aten::len",    "aten::_set_item", "aten::insert",
      "aten::pop",           "aten::clear",       "aten::extend", "aten::reverse",   "aten::copy",
      "aten::add",           "aten::add_",        "aten::slice",  "aten::list",      "aten::select",
      "aten::__is__",        "aten::__isnot__",   "aten::mul",    "aten::mul_",      "aten::__contains__",
      "aten::index",         "aten::dict",        "aten::values", "aten::keys",      "aten::items",
      "aten::get",           "aten::setdefault",  "aten::update", "aten::__not__",   "aten::unchecked_cast",
      "prim::unchecked_cast"};
  return kOps.count(name) != 0;
}

struct StopTrace {};

bool has_device_tensor(const IValue& v, const std::function<bool(const Tensor&)>& is_device) {
  if (v.is_tensor()) return is_device(v.to_tensor());
  if (v.is_list() || v.is_tuple()) {
    for (const IValue& x : v.to_list_or_tuple())
      if (has_device_tensor(x, is_device)) return true;
  }
  if (v.is_dict()) {
    for (const auto& [k, x] : v.to_dict().items)
      if (has_device_tensor(x, is_device)) return true;
  }
  return false;
}

}  // namespace

ReleasePlan compute_release_plan(const Graph& graph) {
  ReleasePlan plan;
  plan_block(graph.top(), plan);
  return plan;
}

OpCategory categorize(const OpOverload& op) {
  static const std::set<std::string> kMetadata = {"aten::dim",   "aten::is_floating_point",
                                                  "aten::len",   "aten::numel",
                                                  "aten::size",  "prim::device",
                                                  "prim::dtype", "prim::is_cuda"};
  static const std::set<std::string> kReadback = {"aten::Bool", "aten::Float",       "aten::FloatImplicit",
                                                  "aten::Int",  "aten::IntImplicit", "aten::ScalarImplicit",
                                                  "aten::item"};
  const Schema& s = op.schema;
  bool tensor_args = false, tensor_returns = false;
  for (const Argument& a : s.arguments) tensor_args |= type_has_tensor(*a.type);
  for (const Argument& a : s.returns) tensor_returns |= type_has_tensor(*a.type);
  if (!tensor_args && !tensor_returns) return OpCategory::kScalar;
  if (!tensor_returns && kMetadata.count(s.name)) return OpCategory::kMetadata;
  if (!tensor_returns && kReadback.count(s.name)) return OpCategory::kReadback;
  return OpCategory::kTensor;
}

std::string GuardValue::key() const {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

namespace {

// Keeps track of which tensors live on the device and when arena allocations die. Shared with the
// storages' deleters, so a tensor dropped after the tracer is gone does no harm.
struct DeviceMemory {
  std::unordered_map<const Storage*, BufferRef> storages;
  std::vector<AllocationRecord> allocs;
  const std::vector<Instruction>* instructions = nullptr;
  bool frozen = false;  // after the trace stops, nothing dies: what is live stays live

  int64_t now() const { return static_cast<int64_t>(instructions->size()); }
};

class Tracer final : public OpContext {
 public:
  Tracer(const TraceSetup& setup, const std::vector<GuardValue>& known)
      : setup_(setup), known_(known), memory_(std::make_shared<DeviceMemory>()) {
    memory_->instructions = &result_.instructions;
  }

  ~Tracer() override {
    env_.clear();
    migrated_.clear();
    weight_storages_.clear();
  }

  TraceResult run(const std::vector<IValue>& inputs) {
    const Graph& graph = *setup_.graph;
    const auto& params = graph.inputs();
    CONVOY_CHECK(inputs.size() == params.size(), "the model takes ", params.size(), " inputs but ",
                 inputs.size(), " were given");
    env_.assign(graph.num_values(), IValue());
    for (size_t i = 0; i < params.size(); ++i)
      env_[static_cast<size_t>(params[i]->id)] = input_value(inputs[i], i);
    try {
      run_block(graph.top());
      for (const Value* v : graph.top()->returns)
        result_.outputs.push_back(output_spec(env_[static_cast<size_t>(v->id)]));
      result_.complete = true;
    } catch (const StopTrace&) {
      result_.complete = false;
    }
    memory_->frozen = true;
    env_.clear();
    result_.allocs = memory_->allocs;
    return std::move(result_);
  }

  // ---- OpContext ----------------------------------------------------------------------------------
  const Node& node() const override { return *node_; }
  std::string where() const override {
    if (!node_) return label_.empty() ? std::string("<plan>") : label_;
    return str_cat(node_->source.str(), ": ", node_->op ? node_->op->schema.full_name() : node_->kind);
  }
  const DeviceInfo& device() const override { return *setup_.device; }

  bool is_device(const Tensor& t) const override {
    return t.defined() && memory_->storages.count(t.storage().get()) != 0;
  }
  bool is_weight(const Tensor& t) const override {
    auto it = t.defined() ? memory_->storages.find(t.storage().get()) : memory_->storages.end();
    return it != memory_->storages.end() && it->second.space == Space::kWeight;
  }

  Tensor to_device(const Tensor& t) override {
    CONVOY_ASSERT(t.defined(), "to_device of an undefined tensor at ", where());
    if (is_device(t)) return t;
    if (auto it = migrated_.find(t.storage().get()); it != migrated_.end())
      return Tensor::from_storage(it->second, t.dtype(), t.sizes(), t.strides(), t.offset());
    if (setup_.constant_storages->count(t.storage().get())) {
      int index = setup_.weights->upload(t, where());
      return Tensor::from_storage(weight_storage(index), t.dtype(), t.sizes(), contiguous_strides(t.sizes()),
                                  0);
    }
    // A host tensor computed while tracing (from shapes and constants only) is a constant of this plan.
    Tensor dense = t.contiguous();
    Tensor d = empty(t.sizes(), t.dtype());
    write_bytes(d, dense);
    return d;
  }

  Tensor empty(const Shape& sizes, DType dtype) override { return allocate(sizes, dtype, false); }
  Tensor scratch(const Shape& sizes, DType dtype) override { return allocate(sizes, dtype, true); }

  Tensor derived_weight(const std::string& key, const std::function<Tensor()>& make) override {
    int index = setup_.weights->derived(key, make, where());
    const Shape& sizes = setup_.weights->sizes(index);
    return Tensor::from_storage(weight_storage(index), setup_.weights->dtype(index), sizes,
                                contiguous_strides(sizes), 0);
  }

  Tensor writable(const Tensor& t) override {
    CONVOY_CHECK_KIND(kUnsupported, !is_weight(t) && !setup_.constant_storages->count(t.storage().get()),
                      where(), ": writes into a model constant (", t.describe(),
                      "); the OpenCL backend keeps constants read-only");
    if (is_device(t)) return t;
    if (auto it = migrated_.find(t.storage().get()); it != migrated_.end())
      return Tensor::from_storage(it->second, t.dtype(), t.sizes(), t.strides(), t.offset());
    // A small host tensor written by a device op moves to the device with its whole storage, so every
    // other view of it sees the write from now on.
    const Storage& host = *t.storage();
    int id = new_allocation(static_cast<int64_t>(host.nbytes()), false);
    auto storage = arena_storage(id, host.nbytes());
    Instruction w;
    w.kind = Instruction::Kind::kWrite;
    w.what = where();
    w.dst = {Space::kArena, id};
    w.data = std::make_shared<const std::vector<uint8_t>>(host.data(), host.data() + host.nbytes());
    w.bytes = host.nbytes();
    result_.instructions.push_back(std::move(w));
    migrated_[t.storage().get()] = storage;
    return Tensor::from_storage(storage, t.dtype(), t.sizes(), t.strides(), t.offset());
  }

  void launch(KernelLaunch k) override {
    for (size_t g : k.global)
      if (g == 0) return;
    CONVOY_ASSERT(!k.global.empty() && k.global.size() <= 3, "bad launch rank at ", where());
    Instruction ins;
    ins.kind = Instruction::Kind::kKernel;
    ins.what = where();
    ins.file = std::move(k.file);
    ins.kernel_name = std::move(k.kernel);
    ins.options = std::move(k.options);
    ins.global = std::move(k.global);
    ins.local = std::move(k.local);
    for (KernelArgValue& a : k.args) {
      KernelArgSpec spec;
      if (auto* t = std::get_if<Tensor>(&a)) {
        CONVOY_ASSERT(is_device(*t), "kernel ", ins.kernel_name, " at ", where(), " given a host tensor ",
                      t->describe());
        spec.kind = KernelArgSpec::Kind::kBuffer;
        spec.buffer = memory_->storages.at(t->storage().get());
        spec.view_offset = t->offset();
        spec.element_size = t->element_size();
      } else if (auto* v = std::get_if<int32_t>(&a)) {
        spec.kind = KernelArgSpec::Kind::kI32;
        spec.i = *v;
      } else if (auto* v = std::get_if<int64_t>(&a)) {
        spec.kind = KernelArgSpec::Kind::kI64;
        spec.i = *v;
      } else if (auto* v = std::get_if<float>(&a)) {
        spec.kind = KernelArgSpec::Kind::kF32;
        spec.f = *v;
      } else if (auto* v = std::get_if<double>(&a)) {
        spec.kind = KernelArgSpec::Kind::kF64;
        spec.f = *v;
      } else if (auto* v = std::get_if<LocalMemory>(&a)) {
        spec.kind = KernelArgSpec::Kind::kLocal;
        spec.i = static_cast<int64_t>(v->bytes);
      } else if (auto* v = std::get_if<MetaBlock>(&a)) {
        spec.kind = KernelArgSpec::Kind::kMeta;
        spec.view_offset = static_cast<int64_t>(ins.meta.size());
        ins.meta.insert(ins.meta.end(), v->values.begin(), v->values.end());
        if (v->values.empty()) ins.meta.push_back(0);
      }
      ins.args.push_back(spec);
    }
    result_.instructions.push_back(std::move(ins));
  }

  void gemm(const GemmCall& call) override {
    const gemm::GemmArgs& g = call.args;
    if (g.m == 0 || g.n == 0 || g.batch_count == 0) return;
    for (const Tensor* t : {&call.a, &call.b, &call.c}) {
      CONVOY_ASSERT(is_device(*t), "GEMM operand at ", where(), " is not on the device");
      CONVOY_CHECK_KIND(kUnsupported, t->dtype() == DType::kFloat32, where(),
                        ": matrix products on OpenCL are ", "float32 only, got ", t->describe());
    }
    Instruction ins;
    ins.kind = Instruction::Kind::kGemm;
    ins.what = where();
    ins.gemm = g;
    ins.a = memory_->storages.at(call.a.storage().get());
    ins.b = memory_->storages.at(call.b.storage().get());
    ins.c = memory_->storages.at(call.c.storage().get());
    ins.gemm.a_offset += static_cast<size_t>(call.a.offset());
    ins.gemm.b_offset += static_cast<size_t>(call.b.offset());
    ins.gemm.c_offset += static_cast<size_t>(call.c.offset());
    if (call.bias.defined()) {
      CONVOY_ASSERT(is_device(call.bias) && call.bias.dtype() == DType::kFloat32, "bad GEMM bias at ",
                    where());
      ins.bias = memory_->storages.at(call.bias.storage().get());
      ins.gemm.epilogue.bias_offset += static_cast<size_t>(call.bias.offset());
    } else {
      ins.gemm.epilogue.bias_axis = gemm::BiasAxis::kNone;
    }
    if (g.k == 0) {
      // An empty sum: C = beta·C (+ epilogue). Nothing in the providers handles K = 0, so the op
      // implementations avoid it; reaching here is a bug.
      fail(ErrorKind::kInternal, where(), ": GEMM with K = 0");
    }
    result_.instructions.push_back(std::move(ins));
  }

  Tensor read_back(const Tensor& one_element) override {
    Tensor t = to_device(one_element);
    return guard(t);
  }

  bool check_flag_after_run(const Tensor& flag, const std::string& message) override {
    CONVOY_ASSERT(is_device(flag) && flag.dtype() == DType::kInt32 && flag.numel() >= 3, "bad error flag ",
                  flag.describe(), " at ", where());
    FlagCheck f;
    f.buffer = memory_->storages.at(flag.storage().get());
    f.view_offset = flag.offset();
    f.message = message;
    result_.flags.push_back(std::move(f));
    // The flag's memory must survive until the run ends, when the executor reads it.
    kept_alive_.push_back(flag);
    return true;
  }

  IValueList run_reference(IValueList& args) override {
    CONVOY_ASSERT(node_ && node_->op, "run_reference outside an op");
    for (const IValue& a : args)
      CONVOY_ASSERT(!has_device_tensor(a, [&](const Tensor& t) { return is_device(t); }),
                    "run_reference given a device tensor at ", where());
    return node_->op->kernel(args);
  }

 private:
  // ---- memory ---------------------------------------------------------------------------------------
  int new_allocation(int64_t bytes, bool is_scratch) {
    AllocationRecord r;
    r.bytes = bytes;
    r.birth = memory_->now();
    r.death = AllocationRecord::kAlive;
    r.scratch = is_scratch;
    r.what = where();
    memory_->allocs.push_back(std::move(r));
    return static_cast<int>(memory_->allocs.size() - 1);
  }

  std::shared_ptr<Storage> arena_storage(int id, size_t nbytes) {
    std::shared_ptr<DeviceMemory> memory = memory_;
    auto token = std::shared_ptr<void>(new int(id), [memory](void* p) {
      int alloc = *static_cast<int*>(p);
      delete static_cast<int*>(p);
      if (!memory->frozen) memory->allocs[static_cast<size_t>(alloc)].death = memory->now();
    });
    auto storage = std::shared_ptr<Storage>(new Storage(token, nullptr, nbytes), [memory](Storage* s) {
      memory->storages.erase(s);
      delete s;
    });
    memory_->storages[storage.get()] = {Space::kArena, id};
    return storage;
  }

  Tensor allocate(const Shape& sizes, DType dtype, bool is_scratch) {
    size_t nbytes = static_cast<size_t>(shape_numel(sizes)) * dtype_size(dtype);
    int id = new_allocation(static_cast<int64_t>(nbytes), is_scratch);
    return Tensor::from_storage(arena_storage(id, nbytes), dtype, sizes, contiguous_strides(sizes), 0);
  }

  std::shared_ptr<Storage> weight_storage(int index) {
    auto it = weight_storages_.find(index);
    if (it != weight_storages_.end()) return it->second;
    size_t nbytes = static_cast<size_t>(shape_numel(setup_.weights->sizes(index))) *
                    dtype_size(setup_.weights->dtype(index));
    std::shared_ptr<DeviceMemory> memory = memory_;
    auto storage = std::shared_ptr<Storage>(new Storage(nullptr, nullptr, nbytes), [memory](Storage* s) {
      memory->storages.erase(s);
      delete s;
    });
    memory_->storages[storage.get()] = {Space::kWeight, index};
    weight_storages_.emplace(index, storage);
    return storage;
  }

  void write_bytes(const Tensor& dst, const Tensor& dense_host) {
    Instruction w;
    w.kind = Instruction::Kind::kWrite;
    w.what = where();
    w.dst = memory_->storages.at(dst.storage().get());
    w.dst_offset = dst.offset() * static_cast<int64_t>(dst.element_size());
    const auto* p = static_cast<const uint8_t*>(dense_host.raw_data());
    w.data = std::make_shared<const std::vector<uint8_t>>(p, p + dense_host.nbytes());
    w.bytes = dense_host.nbytes();
    result_.instructions.push_back(std::move(w));
  }

  IValue input_value(const IValue& v, size_t index) {
    if (!v.is_tensor()) {
      CONVOY_CHECK_KIND(kUnsupported, !has_device_tensor(v, [](const Tensor&) { return true; }), "input ",
                        index, ": tensors inside a ", v.kind_name(),
                        " input are not supported by the OpenCL backend");
      return v;
    }
    const Tensor& t = v.to_tensor();
    label_ = str_cat("input ", index, " (", setup_.graph->inputs()[index]->name, ")");
    Tensor d = empty(t.sizes(), t.dtype());
    label_.clear();
    Instruction w;
    w.kind = Instruction::Kind::kWrite;
    w.what = str_cat("input ", index);
    w.dst = memory_->storages.at(d.storage().get());
    w.input_index = static_cast<int>(index);
    w.bytes = t.nbytes();
    result_.instructions.push_back(std::move(w));
    return d;
  }

  // ---- values ---------------------------------------------------------------------------------------
  // An argument as an op sees it: host tensors that moved to the device are replaced by their device view.
  IValue resolve(const IValue& v) {
    if (migrated_.empty()) return v;
    if (v.is_tensor()) {
      const Tensor& t = v.to_tensor();
      if (t.defined() && !is_device(t) && migrated_.count(t.storage().get())) return to_device(t);
      return v;
    }
    if (v.is_list() || v.is_tuple()) {
      bool changed = false;
      IValueList items;
      for (const IValue& x : v.to_list_or_tuple()) {
        items.push_back(resolve(x));
        changed |= x.is_tensor() && items.back().is_tensor() &&
                   !items.back().to_tensor().shares_storage_with(x.to_tensor());
      }
      if (!changed) return v;
      return v.is_list() ? IValue::list(std::move(items)) : IValue::tuple(std::move(items));
    }
    return v;
  }

  bool all_host_and_small(const IValue& v) {
    if (v.is_tensor()) {
      const Tensor& t = v.to_tensor();
      return !t.defined() || (!is_device(t) && t.numel() <= kSmallHostElements);
    }
    if (v.is_list() || v.is_tuple()) {
      for (const IValue& x : v.to_list_or_tuple())
        if (!all_host_and_small(x)) return false;
    }
    return true;
  }

  Tensor guard(const Tensor& t) {
    CONVOY_CHECK(t.numel() == 1, where(), ": a Tensor with ", t.numel(),
                 " elements cannot be converted to a Python number");
    size_t k = result_.guards.size();
    GuardRead g;
    g.buffer = memory_->storages.at(t.storage().get());
    g.view_offset = t.offset();
    g.dtype = t.dtype();
    g.what = where();
    result_.guard_positions.push_back(result_.instructions.size());
    result_.guards.push_back(g);
    if (k >= known_.size()) {
      // Everything live here is live in the continuation: unwinding must not record deaths.
      memory_->frozen = true;
      throw StopTrace{};
    }
    const GuardValue& value = known_[k];
    CONVOY_ASSERT(value.bytes.size() == t.element_size(), "guard ", k, " value has ", value.bytes.size(),
                  " bytes for ", t.describe());
    Tensor host = Tensor::empty(t.sizes(), t.dtype());
    std::memcpy(host.raw_data(), value.bytes.data(), value.bytes.size());
    return host;
  }

  OutputSpec output_spec(const IValue& v) {
    OutputSpec s;
    if (v.is_tensor() && v.to_tensor().defined()) {
      Tensor t = v.to_tensor();
      if (!is_device(t)) {
        s.kind = OutputSpec::Kind::kHost;
        s.host = IValue(t.clone());
        return s;
      }
      if (!t.is_contiguous()) t = contiguous_copy(*this, t);
      s.kind = OutputSpec::Kind::kDevice;
      s.buffer = memory_->storages.at(t.storage().get());
      s.view_offset = t.offset();
      s.dtype = t.dtype();
      s.sizes = t.sizes();
      // The tensor must stay alive (and its memory unshared) until the outputs are read.
      kept_alive_.push_back(t);
      return s;
    }
    if (v.is_tuple() || v.is_list()) {
      s.kind = v.is_tuple() ? OutputSpec::Kind::kTuple : OutputSpec::Kind::kList;
      for (const IValue& x : v.to_list_or_tuple()) s.items.push_back(output_spec(x));
      return s;
    }
    CONVOY_CHECK_KIND(kUnsupported, !has_device_tensor(v, [&](const Tensor& t) { return is_device(t); }),
                      "a ", v.kind_name(),
                      " output holding device tensors is not supported by the OpenCL backend");
    s.kind = OutputSpec::Kind::kHost;
    s.host = v;
    return s;
  }

  // ---- the walk -------------------------------------------------------------------------------------
  void run_block(const Block* block) {
    const auto& after = setup_.releases->after_node.at(block);
    for (size_t i = 0; i < block->nodes.size(); ++i) {
      run_node(block->nodes[i].get());
      for (int id : after[i]) env_[static_cast<size_t>(id)] = IValue();
    }
  }

  void clear_block(const Block* block) {
    for (int id : setup_.releases->defined.at(block)) env_[static_cast<size_t>(id)] = IValue();
  }

  IValue& in(const Node* node, size_t i) { return env_[static_cast<size_t>(node->inputs[i]->id)]; }
  void set_out(const Node* node, size_t i, IValue v) {
    env_[static_cast<size_t>(node->outputs[i]->id)] = std::move(v);
  }

  void run_node(const Node* node) {
    node_ = node;
    const std::string& kind = node->kind;
    if (node->op) {
      run_op(node);
      return;
    }
    if (kind == "prim::Constant") {
      set_out(node, 0, node->constant);
    } else if (kind == "prim::If") {
      const IValue& c = in(node, 0);
      CONVOY_CHECK(c.is_bool() || c.is_int(), node->source.str(), ": prim::If condition must be a bool, not ",
                   c.kind_name());
      const Block* branch = c.to_bool() ? node->blocks[0].get() : node->blocks[1].get();
      run_block(branch);
      node_ = node;
      std::vector<IValue> outs;
      for (const Value* v : branch->returns) outs.push_back(env_[static_cast<size_t>(v->id)]);
      clear_block(branch);
      for (size_t i = 0; i < outs.size(); ++i) set_out(node, i, std::move(outs[i]));
    } else if (kind == "prim::Loop") {
      const IValue& trips = in(node, 0);
      const IValue& cond0 = in(node, 1);
      CONVOY_CHECK(trips.is_int() && (cond0.is_bool() || cond0.is_int()), node->source.str(),
                   ": prim::Loop needs an int trip count and a bool condition, not ", trips.kind_name(),
                   " and ", cond0.kind_name());
      int64_t max_trips = trips.to_int();
      bool cond = cond0.to_bool();
      size_t carried = node->inputs.size() - 2;
      std::vector<IValue> state(carried);
      for (size_t i = 0; i < carried; ++i) state[i] = in(node, 2 + i);
      const Block* body = node->blocks[0].get();
      for (int64_t trip = 0; trip < max_trips && cond; ++trip) {
        env_[static_cast<size_t>(body->params[0]->id)] = IValue(trip);
        for (size_t i = 0; i < carried; ++i)
          env_[static_cast<size_t>(body->params[1 + i]->id)] = std::move(state[i]);
        run_block(body);
        node_ = node;
        const IValue& c = env_[static_cast<size_t>(body->returns[0]->id)];
        CONVOY_CHECK(c.is_bool() || c.is_int(), node->source.str(),
                     ": prim::Loop condition must be a bool, not ", c.kind_name());
        cond = c.to_bool();
        for (size_t i = 0; i < carried; ++i) state[i] = env_[static_cast<size_t>(body->returns[1 + i]->id)];
        clear_block(body);
      }
      for (size_t i = 0; i < carried; ++i) set_out(node, i, std::move(state[i]));
    } else if (kind == "prim::ListConstruct" || kind == "prim::TupleConstruct") {
      IValueList items;
      for (size_t i = 0; i < node->inputs.size(); ++i) items.push_back(in(node, i));
      set_out(
          node, 0,
          kind == "prim::ListConstruct" ? IValue::list(std::move(items)) : IValue::tuple(std::move(items)));
    } else if (kind == "prim::ListUnpack" || kind == "prim::TupleUnpack") {
      const IValueList& items = in(node, 0).to_list_or_tuple();
      CONVOY_CHECK(items.size() == node->outputs.size(), node->source.str(), ": cannot unpack ", items.size(),
                   " values into ", node->outputs.size());
      IValueList copy = items;
      for (size_t i = 0; i < copy.size(); ++i) set_out(node, i, copy[i]);
    } else if (kind == "prim::TupleIndex") {
      const IValueList& items = in(node, 0).to_list_or_tuple();
      int64_t idx = in(node, 1).to_int();
      int64_t n = static_cast<int64_t>(items.size());
      if (idx < 0) idx += n;
      CONVOY_CHECK(idx >= 0 && idx < n, node->source.str(), ": tuple index ", in(node, 1).to_int(),
                   " out of range for ", n, " items");
      IValue item = items[static_cast<size_t>(idx)];
      set_out(node, 0, item);
    } else if (kind == "prim::DictConstruct") {
      std::vector<std::pair<IValue, IValue>> items;
      for (size_t i = 0; i + 1 < node->inputs.size(); i += 2)
        items.emplace_back(in(node, i), in(node, i + 1));
      set_out(node, 0, IValue::dict(std::move(items)));
    } else if (kind == "prim::Uninitialized") {
      set_out(node, 0, IValue());
    } else if (kind == "prim::RaiseException") {
      std::string message = node->inputs.empty() ? std::string("exception") : in(node, 0).repr();
      fail(ErrorKind::kInvalidInput, node->source.str(), ": the model raised an exception: ", message);
    } else {
      fail(ErrorKind::kUnsupported, node->source.str(), ": no implementation of '", kind, "'");
    }
  }

  void run_op(const Node* node) {
    const OpOverload& op = *node->op;
    IValueList args;
    args.reserve(node->inputs.size());
    for (const Value* v : node->inputs) args.push_back(resolve(env_[static_cast<size_t>(v->id)]));
    auto device_pred = [&](const Tensor& t) { return is_device(t); };
    IValueList results;
    try {
      switch (categorize(op)) {
        case OpCategory::kScalar:
          for (const IValue& a : args)
            CONVOY_CHECK_KIND(
                kUnsupported, !has_device_tensor(a, device_pred) || moves_values_only(op.schema.name),
                "reads a device tensor's data on the host, which the OpenCL backend does not do");
          results = op.kernel(args);
          break;
        case OpCategory::kMetadata:
          results = op.kernel(args);
          break;
        case OpCategory::kReadback:
          for (IValue& a : args)
            if (a.is_tensor() && is_device(a.to_tensor())) a = IValue(guard(a.to_tensor()));
          results = op.kernel(args);
          break;
        case OpCategory::kTensor:
          results = run_tensor_op(op, args);
          break;
      }
    } catch (const StopTrace&) {
      throw;
    } catch (const Error& e) {
      fail(e.kind(), where(), ": ", e.what());
    } catch (const std::exception& e) {
      fail(ErrorKind::kInternal, where(), ": ", e.what());
    }
    CONVOY_CHECK_KIND(kInternal, results.size() == node->outputs.size(), op.schema.full_name(), " returned ",
                      results.size(), " values, the graph expects ", node->outputs.size());
    for (size_t i = 0; i < results.size(); ++i) set_out(node, i, std::move(results[i]));
  }

  IValueList run_tensor_op(const OpOverload& op, IValueList& args) {
    bool host = true;
    for (const IValue& a : args) host = host && all_host_and_small(a);
    if (host) {
      // Scalar work on small host tensors (shape arithmetic through prim::NumToTensor, say) runs on
      // the host at plan time, as the reference executor would; a result too big to be such work is
      // recomputed on the device below.
      IValueList host_args = args;
      IValueList results = op.kernel(host_args);
      bool small = true;
      for (const IValue& r : results) small = small && all_host_and_small(r);
      if (small) {
        args = std::move(host_args);
        return results;
      }
    }
    const OpenCLOp* impl = setup_.table->find(op.schema.full_name());
    CONVOY_CHECK_KIND(kUnsupported, impl != nullptr, "has no OpenCL implementation");
    return (*impl)(*this, args);
  }

  const TraceSetup& setup_;
  const std::vector<GuardValue>& known_;
  std::shared_ptr<DeviceMemory> memory_;
  TraceResult result_;
  std::vector<IValue> env_;
  const Node* node_ = nullptr;
  std::unordered_map<const Storage*, std::shared_ptr<Storage>> migrated_;
  std::map<int, std::shared_ptr<Storage>> weight_storages_;
  std::vector<Tensor> kept_alive_;
  std::string label_;  // names allocations made outside any node (the graph's inputs)
};

}  // namespace

TraceResult trace_plan(const TraceSetup& setup, const std::vector<IValue>& inputs,
                       const std::vector<GuardValue>& known_guards) {
  Tracer tracer(setup, known_guards);
  return tracer.run(inputs);
}

}  // namespace convoy::opencl
