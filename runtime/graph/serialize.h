// Graph IR ↔ Cap'n Proto (schema/graph.capnp). Stages are shipped to workers in this form; the
// round trip is lossless (same nodes, overloads, types, constants and source lines).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/graph/ir.h"

namespace convoy {

class OpRegistry;

// Flat Cap'n Proto message bytes. Tensor constants are copied in as contiguous bytes.
std::vector<uint8_t> serialize_graph(const Graph& graph);

// Every received field is checked where used: value ids in range and defined once, overloads known
// to `registry`, tensor byte counts matching dtype × shape. A bad message is a kInvalidInput error.
std::unique_ptr<Graph> deserialize_graph(const uint8_t* data, size_t size, const OpRegistry& registry);

}  // namespace convoy
