#include "runtime/graph/serialize.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/ops/registry.h"
#include "runtime/sha256.h"
#include "schema/graph.capnp.h"

namespace convoy {

namespace {

void write_type(const Type& t, schema::Type::Builder out) {
  out.setKind(static_cast<schema::Type::Kind>(static_cast<uint16_t>(t.kind)));
  auto contained = out.initContained(static_cast<unsigned>(t.contained.size()));
  for (size_t i = 0; i < t.contained.size(); ++i)
    write_type(*t.contained[i], contained[static_cast<unsigned>(i)]);
  out.setDtype(t.dtype ? static_cast<int8_t>(*t.dtype) : int8_t{-1});
  out.setHasShape(t.shape.has_value());
  if (t.shape) {
    auto shape = out.initShape(static_cast<unsigned>(t.shape->size()));
    for (size_t i = 0; i < t.shape->size(); ++i) shape.set(static_cast<unsigned>(i), (*t.shape)[i]);
  }
}

TypePtr read_type(schema::Type::Reader in, int depth = 0) {
  CONVOY_CHECK(depth < 32, "graph message: type nested deeper than 32 levels");
  auto raw_kind = static_cast<uint16_t>(in.getKind());
  CONVOY_CHECK(raw_kind <= static_cast<uint16_t>(TypeKind::kAny), "graph message: unknown type kind ",
               raw_kind);
  auto t = std::make_shared<Type>();
  t->kind = static_cast<TypeKind>(raw_kind);
  // A list of empty structs costs no bytes on the wire: bound it before walking it (found by fuzz_wire).
  CONVOY_CHECK(in.getContained().size() <= 4096, "graph message: a type with ", in.getContained().size(),
               " contained types (at most 4096)");
  for (auto c : in.getContained()) t->contained.push_back(read_type(c, depth + 1));
  size_t need = t->kind == TypeKind::kList || t->kind == TypeKind::kOptional ? 1
                : t->kind == TypeKind::kDict                                 ? 2
                                                                             : 0;
  CONVOY_CHECK(t->kind == TypeKind::kTuple || t->contained.size() == need, "graph message: type ", t->str(),
               " has ", t->contained.size(), " contained types");
  if (in.getDtype() >= 0) t->dtype = dtype_from_scalar_type(in.getDtype());
  if (in.getHasShape()) {
    Shape s;
    for (int64_t d : in.getShape()) s.push_back(d);
    t->shape = std::move(s);
  }
  return t;
}

// Where externalised tensor constants go while writing one graph.
struct ExternalSink {
  size_t threshold = SIZE_MAX;
  std::vector<ExternalWeight>* out = nullptr;
  int value_id = 0;  // of the prim::Constant being written
};

// SHA-256 of a contiguous tensor's bytes, memoised per (storage, offset, size) while the storage lives:
// a coordinator re-planning the same model does not hash its weights again.
std::string weight_hash(const Tensor& t) {
  struct Entry {
    std::weak_ptr<Storage> storage;
    std::string hash;
  };
  static std::mutex mutex;
  static std::map<std::tuple<const Storage*, int64_t, size_t>, Entry> memo;
  const auto key = std::make_tuple(t.storage().get(), t.offset(), t.nbytes());
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = memo.find(key);
    if (it != memo.end() && !it->second.storage.expired() && it->second.storage.lock() == t.storage())
      return it->second.hash;
  }
  const auto digest = sha256(t.raw_data(), t.nbytes());
  std::string hash(reinterpret_cast<const char*>(digest.data()), digest.size());
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = memo.begin(); it != memo.end();) it = it->second.storage.expired() ? memo.erase(it) : ++it;
  memo[key] = Entry{t.storage(), hash};
  return hash;
}

void write_constant(const IValue& v, schema::Constant::Builder out, ExternalSink& sink) {
  if (v.is_none()) {
    out.setNone();
  } else if (v.is_bool()) {
    out.setBool(v.to_bool());
  } else if (v.is_int()) {
    out.setInt(v.to_int());
  } else if (v.is_double()) {
    out.setFloat(v.to_double());
  } else if (v.is_string()) {
    out.setString(v.to_string());
  } else if (v.is_device()) {
    out.setDevice(v.to_device().name);
  } else if (v.is_tensor()) {
    Tensor t = v.to_tensor().contiguous();
    auto td = out.initTensor();
    td.setDtype(static_cast<int8_t>(t.dtype()));
    auto shape = td.initShape(static_cast<unsigned>(t.dim()));
    for (int64_t i = 0; i < t.dim(); ++i)
      shape.set(static_cast<unsigned>(i), t.sizes()[static_cast<size_t>(i)]);
    if (sink.out && t.nbytes() >= sink.threshold) {
      std::string hash = weight_hash(t);
      td.setContentHash(kj::arrayPtr(reinterpret_cast<const kj::byte*>(hash.data()), hash.size()));
      const bool known = std::any_of(sink.out->begin(), sink.out->end(),
                                     [&](const ExternalWeight& w) { return w.hash == hash; });
      if (!known) sink.out->push_back(ExternalWeight{sink.value_id, std::move(hash), t});
    } else {
      td.setData(kj::arrayPtr(static_cast<const kj::byte*>(t.raw_data()), t.nbytes()));
    }
  } else if (v.is_list() || v.is_tuple()) {
    const IValueList& items = v.to_list_or_tuple();
    auto list = v.is_list() ? out.initList(static_cast<unsigned>(items.size()))
                            : out.initTuple(static_cast<unsigned>(items.size()));
    for (size_t i = 0; i < items.size(); ++i) write_constant(items[i], list[static_cast<unsigned>(i)], sink);
  } else {
    fail(ErrorKind::kUnsupported, "cannot serialise a constant of kind ", v.kind_name());
  }
}

IValue read_constant(schema::Constant::Reader in, const WeightResolver* resolver, int depth = 0) {
  CONVOY_CHECK(depth < 32, "graph message: constant nested deeper than 32 levels");
  switch (in.which()) {
    case schema::Constant::NONE:
      return IValue();
    case schema::Constant::BOOL:
      return IValue(in.getBool());
    case schema::Constant::INT:
      return IValue(static_cast<int64_t>(in.getInt()));
    case schema::Constant::FLOAT:
      return IValue(in.getFloat());
    case schema::Constant::STRING:
      return IValue(std::string(in.getString().cStr()));
    case schema::Constant::DEVICE:
      return IValue(Device{in.getDevice().cStr()});
    case schema::Constant::TENSOR: {
      auto td = in.getTensor();
      DType dtype = dtype_from_scalar_type(td.getDtype());
      Shape shape;
      for (int64_t d : td.getShape()) {
        CONVOY_CHECK(d >= 0 && d < (int64_t{1} << 40), "graph message: tensor dimension ", d,
                     " out of range");
        shape.push_back(d);
      }
      auto data = td.getData();
      if (td.hasContentHash() && data.size() == 0) {
        auto hash = td.getContentHash();
        CONVOY_CHECK(hash.size() == 32, "graph message: tensor contentHash of ", hash.size(),
                     " bytes (expected 32)");
        CONVOY_CHECK(resolver != nullptr, "graph message: tensor ", dtype_name(dtype), shape_str(shape),
                     " refers to weight ",
                     hex_string(std::string_view(reinterpret_cast<const char*>(hash.begin()), 8)),
                     "... by hash, but no weights came with it");
        Tensor t =
            (*resolver)(std::string(reinterpret_cast<const char*>(hash.begin()), hash.size()), dtype, shape);
        CONVOY_CHECK(t.defined() && t.dtype() == dtype && t.sizes() == shape,
                     "graph message: weight resolved for ", dtype_name(dtype), shape_str(shape), " is ",
                     t.defined() ? t.describe() : std::string("undefined"));
        return IValue(t);
      }
      // Multiply with an overflow guard before comparing against the received byte count.
      unsigned __int128 need = dtype_size(dtype);
      for (int64_t d : shape) need *= static_cast<unsigned __int128>(d);
      CONVOY_CHECK(need == data.size(), "graph message: tensor ", dtype_name(dtype), shape_str(shape),
                   " needs ", static_cast<uint64_t>(need), " bytes but carries ", data.size());
      Tensor t = Tensor::empty(shape, dtype);
      if (data.size()) std::memcpy(t.raw_data(), data.begin(), data.size());
      return IValue(t);
    }
    case schema::Constant::LIST:
    case schema::Constant::TUPLE: {
      auto items_in = in.which() == schema::Constant::LIST ? in.getList() : in.getTuple();
      IValueList items;
      for (auto c : items_in) items.push_back(read_constant(c, resolver, depth + 1));
      return in.which() == schema::Constant::LIST ? IValue::list(std::move(items))
                                                  : IValue::tuple(std::move(items));
    }
  }
  fail(ErrorKind::kInvalidInput, "graph message: unknown constant kind");
}

template <typename List>
void write_ids(const std::vector<Value*>& values, List out) {
  for (size_t i = 0; i < values.size(); ++i)
    out.set(static_cast<unsigned>(i), static_cast<uint32_t>(values[i]->id));
}

void write_block(const Block& block, schema::Block::Builder out, ExternalSink& sink) {
  write_ids(block.params, out.initParams(static_cast<unsigned>(block.params.size())));
  write_ids(block.returns, out.initReturns(static_cast<unsigned>(block.returns.size())));
  auto nodes = out.initNodes(static_cast<unsigned>(block.nodes.size()));
  for (size_t i = 0; i < block.nodes.size(); ++i) {
    const Node& n = *block.nodes[i];
    auto nb = nodes[static_cast<unsigned>(i)];
    nb.setKind(n.kind);
    if (n.op) nb.setOverload(n.op->schema.overload);
    write_ids(n.inputs, nb.initInputs(static_cast<unsigned>(n.inputs.size())));
    write_ids(n.outputs, nb.initOutputs(static_cast<unsigned>(n.outputs.size())));
    auto blocks = nb.initBlocks(static_cast<unsigned>(n.blocks.size()));
    for (size_t b = 0; b < n.blocks.size(); ++b)
      write_block(*n.blocks[b], blocks[static_cast<unsigned>(b)], sink);
    if (n.kind == "prim::Constant") {
      sink.value_id = n.outputs.empty() ? 0 : n.outputs[0]->id;
      write_constant(n.constant, nb.initConstant(), sink);
    }
    nb.setSourceFile(n.source.file);
    nb.setSourceLine(static_cast<uint32_t>(std::max(n.source.line, 0)));
  }
}

struct Reader {
  Graph& graph;
  const OpRegistry& registry;
  const WeightResolver* resolver = nullptr;
  std::vector<Value*> by_id;  // message id → value in the new graph
  std::vector<bool> defined;  // each id is defined exactly once
  std::vector<TypePtr> types;
  std::vector<std::string> names;

  Value* define(uint32_t id, Block* param_block) {
    CONVOY_CHECK(id < by_id.size(), "graph message: value id ", id, " out of range (", by_id.size(),
                 " values)");
    CONVOY_CHECK(!defined[id], "graph message: value %", id, " defined twice");
    defined[id] = true;
    return by_id[id];
  }
  Value* use(uint32_t id) {
    CONVOY_CHECK(id < by_id.size() && defined[id], "graph message: value %", id,
                 " used before its definition");
    return by_id[id];
  }

  void read_block(schema::Block::Reader in, Block* block, int depth) {
    CONVOY_CHECK(depth < 64, "graph message: blocks nested deeper than 64 levels");
    for (uint32_t id : in.getParams()) {
      Value* v = define(id, block);
      v->param_of = block;
      v->index = block->params.size();
      block->params.push_back(v);
    }
    for (auto nin : in.getNodes()) {
      std::string kind = nin.getKind().cStr();
      std::string overload = nin.getOverload().cStr();
      auto node = std::make_unique<Node>();
      node->kind = kind;
      node->owner = block;
      node->source = SourceRange{nin.getSourceFile().cStr(), static_cast<int>(nin.getSourceLine())};
      if (!is_structural_prim(kind)) {
        node->op = registry.find(kind, overload);
        CONVOY_CHECK(node->op != nullptr, "graph message: unknown op '", kind, overload.empty() ? "" : ".",
                     overload, "'");
      }
      for (uint32_t id : nin.getInputs()) node->inputs.push_back(use(id));
      for (auto bin : nin.getBlocks()) {
        Block* b = node->add_block();
        b->graph = &graph;
        read_block(bin, b, depth + 1);
      }
      for (uint32_t id : nin.getOutputs()) {
        Value* v = define(id, nullptr);
        v->node = node.get();
        v->index = node->outputs.size();
        node->outputs.push_back(v);
      }
      if (kind == "prim::Constant") {
        CONVOY_CHECK(node->outputs.size() == 1 && node->inputs.empty(),
                     "graph message: malformed prim::Constant");
        node->constant = read_constant(nin.getConstant(), resolver);
      }
      if (kind == "prim::If")
        CONVOY_CHECK(node->blocks.size() == 2 && node->inputs.size() == 1,
                     "graph message: malformed prim::If");
      if (kind == "prim::Loop")
        CONVOY_CHECK(node->blocks.size() == 1 && node->inputs.size() >= 2 &&
                         node->blocks[0]->params.size() == node->inputs.size() - 1 &&
                         node->outputs.size() == node->inputs.size() - 2,
                     "graph message: malformed prim::Loop");
      if (node->op)
        CONVOY_CHECK(node->inputs.size() == node->op->schema.arguments.size() &&
                         node->outputs.size() == node->op->schema.returns.size(),
                     "graph message: ", node->op->schema.full_name(), " with ", node->inputs.size(),
                     " inputs and ", node->outputs.size(), " outputs does not match its schema");
      block->nodes.push_back(std::move(node));
    }
    for (uint32_t id : in.getReturns()) block->returns.push_back(use(id));
    if (Node* owner = block->owner_node) {
      if (owner->kind == "prim::If")
        CONVOY_CHECK(block->returns.size() == owner->outputs.size() || owner->outputs.empty(),
                     "graph message: prim::If branch returns ", block->returns.size(), " values");
    }
  }
};

}  // namespace

namespace {

std::unique_ptr<Graph> read_graph(schema::Graph::Reader root, const OpRegistry& registry,
                                  const WeightResolver* resolver) {
  auto graph = std::make_unique<Graph>();
  Reader reader{*graph, registry, resolver, {}, {}, {}, {}};
  auto values = root.getValues();
  CONVOY_CHECK(values.size() < (1u << 26), "graph message: ", values.size(), " values is too many");
  reader.by_id.resize(values.size());
  reader.defined.assign(values.size(), false);
  for (unsigned i = 0; i < values.size(); ++i) {
    CONVOY_CHECK(values[i].getId() == i, "graph message: value ", i, " has id ", values[i].getId());
    reader.by_id[i] = graph->new_value(read_type(values[i].getType()), values[i].getName().cStr());
  }
  reader.read_block(root.getTop(), graph->top(), 0);
  return graph;
}

}  // namespace

void serialize_graph_into(const Graph& graph, schema::Graph::Builder root, size_t externalize_bytes,
                          std::vector<ExternalWeight>* external) {
  // Only values reachable from the graph are written, renumbered densely.
  auto values = root.initValues(static_cast<unsigned>(graph.num_values()));
  std::vector<const Value*> all(graph.num_values(), nullptr);
  std::function<void(const Block*)> visit = [&](const Block* b) {
    for (const Value* v : b->params) all[static_cast<size_t>(v->id)] = v;
    for (const auto& n : b->nodes) {
      for (const auto& nb : n->blocks) visit(nb.get());
      for (const Value* v : n->outputs) all[static_cast<size_t>(v->id)] = v;
    }
  };
  visit(graph.top());
  for (size_t i = 0; i < all.size(); ++i) {
    auto vb = values[static_cast<unsigned>(i)];
    vb.setId(static_cast<uint32_t>(i));
    if (all[i]) {
      write_type(*all[i]->type, vb.initType());
      vb.setName(all[i]->name);
    } else {
      write_type(*Type::any(), vb.initType());
    }
  }
  ExternalSink sink{externalize_bytes, external, 0};
  write_block(*graph.top(), root.initTop(), sink);
}

std::vector<uint8_t> serialize_graph(const Graph& graph) {
  capnp::MallocMessageBuilder message;
  serialize_graph_into(graph, message.initRoot<schema::Graph>(), SIZE_MAX, nullptr);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::unique_ptr<Graph> deserialize_graph(const uint8_t* data, size_t size, const OpRegistry& registry) {
  CONVOY_CHECK(size % sizeof(capnp::word) == 0, "graph message: ", size,
               " bytes is not a whole number of words");
  // Copy into aligned words: the received buffer need not be 8-byte aligned.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = size / sizeof(capnp::word) * 2 + 1024;
  options.nestingLimit = 128;
  try {
    capnp::FlatArrayMessageReader message(words, options);
    return read_graph(message.getRoot<schema::Graph>(), registry, nullptr);
  } catch (const kj::Exception& e) {
    fail(ErrorKind::kInvalidInput, "graph message: malformed Cap'n Proto data: ", e.getDescription().cStr());
  }
}

std::unique_ptr<Graph> deserialize_graph(schema::Graph::Reader in, const OpRegistry& registry,
                                         const WeightResolver& resolver) {
  try {
    return read_graph(in, registry, resolver ? &resolver : nullptr);
  } catch (const kj::Exception& e) {
    fail(ErrorKind::kInvalidInput, "graph message: malformed Cap'n Proto data: ", e.getDescription().cStr());
  }
}

}  // namespace convoy
