// The coordinator's one entry to planning: which stages a job's graph is cut into, which workers'
// devices run each stage's replicas, the predicted seconds per micro-batch of each stage, and the
// plan as the printer shows it. Everything the partitioner (runtime/partition) needs from the
// coordinator goes through here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph/ir.h"
#include "runtime/tensor.h"

namespace convoy {

// One device of a registered worker, as its Register message described it.
struct WorkerDevice {
  uint32_t worker_id = 0;
  std::string worker;  // the worker's name, for plans and logs
  uint32_t index = 0;  // DeviceInfo.index on that worker
  std::string name;
  std::string backend;
  uint64_t memory_bytes = 0;
  uint32_t compute_units = 0;
  double gemm_gflops = 0;
  double copy_gbps = 0;
  std::string processor;  // devices with the same key share one physical processor
  uint32_t threads = 0;
  double slowdown = 1;  // measured while running: its stages run this many times slower than predicted
};

struct StageReplica {
  uint32_t worker_id = 0;
  std::string worker;
  uint32_t device = 0;  // DeviceInfo.index
};

struct AssignedStage {
  std::shared_ptr<const Graph> graph;  // the stage's subgraph (the whole graph for a one-stage plan)
  std::string first_op, last_op;
  double predicted_seconds = 0;  // per micro-batch; 0 when the cost model has no estimate
  std::vector<StageReplica> replicas;
  std::vector<struct InputShape> inputs;  // a full micro-batch's stage inputs (warm shapes); empty if unknown
};

struct JobPlan {
  std::vector<AssignedStage> stages;
  std::string text;       // the plan printer's table
  double throughput = 0;  // predicted micro-batches per second (0: no estimate)
};

// A micro-batch's inputs: what a stage is planned and warmed for.
struct InputShape {
  DType dtype = DType::kFloat32;
  Shape shape;
};

struct PlanSettings {
  uint32_t max_in_flight = 4;  // micro-batches buffered per device (the cluster's max_in_flight)
  int64_t micro_batches = 16;  // of the job: what the printed pipeline bubble is computed for
  uint32_t max_replicas = 0;   // per stage; 0: no limit
  double op_seconds = 30e-6;   // the cost model's fixed cost per device op
};

// Plans `graph` over `devices` for micro-batches shaped like `inputs` with the partitioner
// (runtime/partition), and extracts each stage's subgraph. A graph the cost model cannot analyse
// falls back to one stage replicated on every worker, and the plan's text says why. Throws
// convoy::Error when there are no devices or no plan fits their memory.
JobPlan plan_job(std::shared_ptr<const Graph> graph, const std::vector<WorkerDevice>& devices,
                 const std::vector<InputShape>& inputs, const PlanSettings& settings = {});

// `count` workers of this machine's profile (GEMM GFLOP/s and copy GB/s of the whole processor)
// sharing one processor, named "local-1".. (for `plan JOB.yaml --workers N` without a daemon).
std::vector<WorkerDevice> simulated_local_workers(uint32_t count, const std::string& backend,
                                                  double gemm_gflops, double copy_gbps);

}  // namespace convoy
