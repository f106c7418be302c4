// Graph IR ↔ Cap'n Proto (schema/graph.capnp). Stages are shipped to workers in this form; the
// round trip is lossless (same nodes, overloads, types, constants and source lines).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph/ir.h"
#include "schema/graph.capnp.h"

namespace convoy {

class OpRegistry;

// Flat Cap'n Proto message bytes. Tensor constants are copied in as contiguous bytes.
std::vector<uint8_t> serialize_graph(const Graph& graph);

// A tensor constant sent apart from the graph and referred to by the SHA-256 of its contiguous
// bytes (schema TensorData.contentHash), so a worker that already holds it is not sent it again.
struct ExternalWeight {
  int value_id = 0;  // the prim::Constant output, numbered as in the written message
  std::string hash;  // 32 raw bytes
  Tensor tensor;     // contiguous
};

// Writes `graph` into `out`. Tensor constants of at least `externalize_bytes` bytes carry only their
// dtype, shape and contentHash, and are appended to `external` (each distinct hash once). Hashes are
// memoised per storage, so hashing a model's weights is paid once per process.
void serialize_graph_into(const Graph& graph, schema::Graph::Builder out, size_t externalize_bytes,
                          std::vector<ExternalWeight>* external);

// Supplies an externalised weight: must return a tensor of exactly `dtype` and `shape` or throw
// convoy::Error (kInvalidInput naming the hash when it is unknown).
using WeightResolver = std::function<Tensor(const std::string& hash, DType dtype, const Shape& shape)>;

// Reads a graph from an already-open message (e.g. AssignStage.graph), with the same checks as
// deserialize_graph; tensor constants with a contentHash and no data come from `resolver`.
std::unique_ptr<Graph> deserialize_graph(schema::Graph::Reader in, const OpRegistry& registry,
                                         const WeightResolver& resolver);

// Every received field is checked where used: value ids in range and defined once, overloads known
// to `registry`, tensor byte counts matching dtype × shape. A bad message is a kInvalidInput error.
std::unique_ptr<Graph> deserialize_graph(const uint8_t* data, size_t size, const OpRegistry& registry);

}  // namespace convoy
