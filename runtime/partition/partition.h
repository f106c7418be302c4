// The partitioner: a cost model per top-level node of a Graph, a dynamic program that cuts the
// top-level node order into pipeline stages and gives each stage a run of devices (data-parallel
// replicas), a plan printer, and extract_stage(), which turns one stage's node range into a Graph of
// its own. See docs/partitioner.md for the model, the recurrence and what it ignores.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph/ir.h"

namespace convoy {

// ---------------------------------------------------------------------------------------------------
// Cost model

// The cost of one top-level node, for one micro-batch of the given input shapes. A prim::If or
// prim::Loop is one atomic node: its cost is that of its blocks (an If the larger branch, a Loop its
// body times the trip count when that is a constant, else once).
struct NodeCost {
  double flops = 0;          // multiply-add counted as 2
  double bytes = 0;          // tensor bytes read (inputs, weights included) + written (outputs)
  uint64_t out_bytes = 0;    // tensor bytes of the node's outputs
  uint64_t live_bytes = 0;   // activation bytes live while the node runs (its inputs, outputs, and
                             // everything live across it); the stage's arena is the max over its nodes
  bool shapes_known = true;  // false if a tensor shape had to be guessed (see docs)
};

// A tensor constant (weight) and the top-level nodes that use it (nested uses count for the node).
struct WeightUse {
  uint64_t bytes = 0;
  std::vector<int> users;  // indices into the chain, ascending
};

// A chain of n units (top-level nodes) with n+1 cut positions: cut c lies before unit c, so cut 0 is
// before everything (the graph inputs) and cut n after everything (the graph outputs). A stage covers
// units [a, b) between two allowed cuts a < b.
struct ChainCosts {
  std::vector<double> flops;         // n
  std::vector<double> bytes;         // n: bytes moved by the unit (memory traffic)
  std::vector<uint64_t> live_bytes;  // n: activation bytes live while the unit runs
  std::vector<WeightUse> weights;    // each weight counted once per stage that uses it
  std::vector<uint64_t> cut_bytes;   // n+1: tensor bytes crossing each cut (0: inputs, n: outputs)
  std::vector<uint8_t> cut_allowed;  // n+1: 1 where a cut may be made (0 and n always are)
  std::vector<std::string> names;    // n (optional): node kinds, for the printer
  std::vector<double> ops;           // n (optional): device ops (kernel launches) the unit runs
  // n+1 (optional): at each allowed cut, the types (concrete shapes) of the values crossing it, in
  // extract_stage's parameter order (cut 0: the graph inputs). What a stage is warmed on.
  std::vector<std::vector<TypePtr>> cut_types;

  size_t size() const { return flops.size(); }
};

// Analyses `graph` for inputs of the given types (one per graph input; tensor types with concrete
// shapes and dtypes, e.g. Type::tensor(DType::kFloat32, Shape{4, 3, 224, 224}); other inputs by
// their static type or a constant value's type). Shapes are propagated with the registry's shape
// inference; ints computed from shapes (aten::size, arithmetic) are evaluated on the way.
// Unit i of the result is graph.top()->nodes[i]. A cut is allowed only where every value crossing
// it is a Tensor; constants, and lists/tuples built only from constants, do not cross cuts (they are
// copied into each stage that uses them).
ChainCosts analyse_graph(const Graph& graph, const std::vector<TypePtr>& input_types);

// The per-node view of the same analysis, for inspection and tests.
std::vector<NodeCost> node_costs(const Graph& graph, const std::vector<TypePtr>& input_types);

// ---------------------------------------------------------------------------------------------------
// Devices and options

struct DeviceProfile {
  std::string worker;         // the worker daemon's name; devices of one worker share its process
  int device = 0;             // device index within the worker
  double gflops = 1;          // measured GEMM GFLOP/s (of the whole processor when measured alone)
  double copy_gbps = 1;       // measured device memory copy bandwidth, GB/s
  uint64_t memory_bytes = 0;  // memory the stage may use
  std::string processor;      // devices with equal non-empty keys share one physical processor
  double slowdown = 1;        // measured: its stages run this many times slower than predicted (>= 1)
};

struct PartitionOptions {
  double link_gbps = 2.0;  // between workers, and between the coordinator and the pipeline (GB/s)
  double same_worker_gbps = std::numeric_limits<double>::infinity();  // stages in one worker process
  int max_in_flight = 2;   // micro-batches buffered per device (inputs and outputs of each)
  int micro_batches = 16;  // for the reported pipeline bubble
  // Fixed cost of each device op (a kernel launch and its bookkeeping), which dominates small
  // models: measured on PoCL at 20-50 us per launch.
  double op_seconds = 30e-6;
  int max_replicas = 0;  // per stage; 0: no limit (1 forces a pure pipeline)
};

// ---------------------------------------------------------------------------------------------------
// Plans

struct StageDevice {
  size_t index = 0;  // into the device list given to partition()
  std::string worker;
  int device = 0;
  uint64_t memory_bytes = 0;  // predicted use on this device: weights + arena + in-flight buffers
};

struct PlanStage {
  int first = 0;  // first and last unit (top-level node index), inclusive
  int last = 0;
  std::vector<StageDevice> devices;  // the stage's replicas (replica count = devices.size())
  double seconds = 0;                // predicted time of one micro-batch on one replica, receive included
  double receive_seconds = 0;        // of which receiving its inputs
  double flops = 0;
  uint64_t weight_bytes = 0;
  uint64_t arena_bytes = 0;
  uint64_t in_bytes = 0;          // received per micro-batch (the cut before the stage)
  uint64_t out_bytes = 0;         // sent per micro-batch on its outgoing link (the cut after it)
  double samples_per_second = 0;  // micro-batches/s this stage sustains (replicas / seconds, shared
                                  // processors accounted)
};

struct Plan {
  std::vector<PlanStage> stages;
  double throughput = 0;                // micro-batches per second: the minimum over stages and processors
  int micro_batches = 0;                // what the bubble is computed for
  double bubble = 0;                    // idle fraction of the pipeline for that many micro-batches
  std::vector<std::string> unit_names;  // for the printer (may be empty)
};

// The dynamic program on a chain. Devices are considered in the order (processor, worker, device,
// position); each stage takes a contiguous run of that order, stages take runs in order, and a
// device may be left unused. Maximises throughput; among equal plans the one that leaves later
// devices unused wins, then the first the recurrence finds (deterministic). Throws kInvalidInput for zero
// devices or when no plan fits memory.
Plan partition_chain(const ChainCosts& costs, const std::vector<DeviceProfile>& devices,
                     const PartitionOptions& options = {});

// analyse_graph + partition_chain.
Plan partition(const Graph& graph, const std::vector<TypePtr>& input_types,
               const std::vector<DeviceProfile>& devices, const PartitionOptions& options = {});

// The model the DP optimises, evaluated on one given assignment: stage k covers units
// [cuts[k], cuts[k+1]) (allowed cuts, ascending, from 0 to n) on the device run
// [ranges[k].first, ranges[k].second) of positions in device_order(devices) (ascending, disjoint).
// Returns a plan with throughput 0 if some device lacks memory. The tests' brute force uses it.
Plan evaluate_plan(const ChainCosts& costs, const std::vector<DeviceProfile>& devices,
                   const std::vector<int>& cuts, const std::vector<std::pair<size_t, size_t>>& ranges,
                   const PartitionOptions& options = {});

// The order the DP considers devices in (indices into `devices`).
std::vector<size_t> device_order(const std::vector<DeviceProfile>& devices);

// Idle fraction of a pipeline with these per-stage micro-batch times and throughput for m
// micro-batches: 1 - (m / throughput) / (sum of stage times + (m - 1) / throughput).
double pipeline_bubble(const std::vector<double>& stage_seconds, double throughput, int micro_batches);

// A human-readable table: stages, node ranges with first/last op names, devices × replicas,
// predicted time per stage, bytes per link, memory per device, throughput and bubble.
std::string format_plan(const Plan& plan);

// ---------------------------------------------------------------------------------------------------
// Stage extraction

// The values crossing cut c (c in [0, n]): graph inputs and outputs of non-constant top-level nodes
// defined before unit c and used at or after it (a use by a graph return counts as a use after the
// last unit). Ordered by definition: graph inputs in order, then node outputs by node, then output
// position. Constants and constant-built lists never cross.
std::vector<const Value*> values_across_cut(const Graph& graph, int cut);

// A new Graph for top-level nodes [first, last] (inclusive) of `graph`:
//   params:  for first == 0, the graph's inputs (all of them, in order); otherwise
//            values_across_cut(graph, first).
//   returns: for last == n - 1, the graph's returns (in order); otherwise
//            values_across_cut(graph, last + 1) (values merely passing through are returned as given).
// So stage k's returns are stage k+1's params, in order. Constants (and constant-built lists) that
// the range uses are copied in; nodes share overloads with the source; tensor constants share
// storage. Throws kInvalidInput if the range is empty or out of bounds.
std::unique_ptr<Graph> extract_stage(const Graph& graph, int first, int last);

}  // namespace convoy
