#include "coordinator/planner.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <thread>

#include "runtime/error.h"
#include "runtime/graph/type.h"
#include "runtime/partition/partition.h"

namespace convoy {

namespace {

uint64_t physical_memory() {
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

bool boring(const std::string& kind) {
  return kind == "prim::Constant" || kind == "prim::ListConstruct" || kind == "prim::TupleConstruct";
}

// The first and last compute nodes among top-level nodes [first, last].
std::pair<std::string, std::string> end_ops(const Graph& graph, size_t first, size_t last) {
  std::string a, b;
  const auto& nodes = graph.top()->nodes;
  for (size_t i = first; i <= last && i < nodes.size(); ++i) {
    if (boring(nodes[i]->kind)) continue;
    if (a.empty()) a = nodes[i]->kind;
    b = nodes[i]->kind;
  }
  if (a.empty() && first < nodes.size()) a = b = nodes[first]->kind;
  return {a, b};
}

// One device per worker, all running the whole graph: the plan for graphs the cost model cannot
// analyse.
JobPlan replicated_plan(std::shared_ptr<const Graph> graph, const std::vector<WorkerDevice>& devices,
                        const std::string& why) {
  AssignedStage stage;
  stage.graph = graph;
  size_t n = graph->top()->nodes.size();
  std::tie(stage.first_op, stage.last_op) = end_ops(*graph, 0, n ? n - 1 : 0);
  std::map<uint32_t, bool> seen;
  std::string workers;
  for (const WorkerDevice& d : devices) {
    if (seen[d.worker_id]) continue;
    seen[d.worker_id] = true;
    stage.replicas.push_back({d.worker_id, d.worker, d.index});
    workers += (workers.empty() ? "" : ", ") + d.worker;
  }
  JobPlan plan;
  std::ostringstream text;
  text << "partitioner: " << why << "\n"
       << "plan: 1 stage (" << stage.first_op << " .. " << stage.last_op << "), " << stage.replicas.size()
       << " replica(s) on " << workers << "; no prediction\n";
  plan.stages.push_back(std::move(stage));
  plan.text = text.str();
  return plan;
}

}  // namespace

JobPlan plan_job(std::shared_ptr<const Graph> graph, const std::vector<WorkerDevice>& devices,
                 const std::vector<InputShape>& inputs, const PlanSettings& settings) {
  CONVOY_CHECK(!devices.empty(), "no workers to plan on");
  std::vector<DeviceProfile> profiles;
  for (const WorkerDevice& d : devices) {
    DeviceProfile p;
    p.worker = d.worker;
    p.device = static_cast<int>(d.index);
    // An unmeasured device still has to be plannable: 1 GFLOP/s and 1 GB/s rank it last.
    p.gflops = d.gemm_gflops > 0 ? d.gemm_gflops : 1;
    p.copy_gbps = d.copy_gbps > 0 ? d.copy_gbps : 1;
    p.memory_bytes = d.memory_bytes ? d.memory_bytes : physical_memory();
    p.processor = d.processor;
    p.slowdown = d.slowdown;
    profiles.push_back(p);
  }
  std::vector<TypePtr> types;
  for (const InputShape& in : inputs) types.push_back(Type::tensor(in.dtype, in.shape));
  PartitionOptions options;
  options.max_in_flight = static_cast<int>(std::max<uint32_t>(1, settings.max_in_flight));
  options.micro_batches = static_cast<int>(std::clamp<int64_t>(settings.micro_batches, 1, 1 << 30));
  options.max_replicas = static_cast<int>(settings.max_replicas);
  options.op_seconds = settings.op_seconds;

  ChainCosts costs;
  try {
    costs = analyse_graph(*graph, types);
  } catch (const Error& e) {
    return replicated_plan(graph, devices, std::string("cost model failed (") + e.what() + ")");
  }
  Plan plan = partition_chain(costs, profiles, options);  // no plan within memory: the job fails
  CONVOY_ASSERT(!plan.stages.empty(), "the partitioner returned no stages");

  JobPlan out;
  int n = static_cast<int>(graph->top()->nodes.size());
  for (const PlanStage& ps : plan.stages) {
    AssignedStage st;
    if (plan.stages.size() == 1 && ps.first == 0 && ps.last == n - 1)
      st.graph = graph;  // the whole model: no copy
    else
      st.graph = std::shared_ptr<const Graph>(extract_stage(*graph, ps.first, ps.last));
    std::tie(st.first_op, st.last_op) =
        end_ops(*graph, static_cast<size_t>(ps.first), static_cast<size_t>(ps.last));
    st.predicted_seconds = ps.seconds;
    if (static_cast<size_t>(ps.first) < costs.cut_types.size()) {
      for (const TypePtr& t : costs.cut_types[static_cast<size_t>(ps.first)]) {
        if (!t || !t->is(TypeKind::kTensor) || !t->dtype || !t->shape) {
          st.inputs.clear();  // not all known: the stage warms on its first micro-batch
          break;
        }
        st.inputs.push_back(InputShape{*t->dtype, *t->shape});
      }
    }
    for (const StageDevice& sd : ps.devices) {
      CONVOY_ASSERT(sd.index < devices.size(), "the partitioner named device ", sd.index, " of ",
                    devices.size());
      const WorkerDevice& d = devices[sd.index];
      st.replicas.push_back({d.worker_id, d.worker, d.index});
    }
    CONVOY_ASSERT(!st.replicas.empty(), "the partitioner gave a stage no device");
    out.stages.push_back(std::move(st));
  }
  if (plan.unit_names.empty()) plan.unit_names = costs.names;
  out.text = format_plan(plan);
  out.throughput = plan.throughput;
  return out;
}

std::vector<WorkerDevice> simulated_local_workers(uint32_t count, const std::string& backend,
                                                  double gemm_gflops, double copy_gbps) {
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  std::vector<WorkerDevice> out;
  for (uint32_t i = 0; i < count; ++i) {
    WorkerDevice d;
    d.worker_id = i + 1;
    d.worker = "local-" + std::to_string(i + 1);
    d.index = 0;
    d.name = "this machine";
    d.backend = backend;
    d.memory_bytes = physical_memory() / std::max(1u, count);
    d.threads = std::max(1u, cores / std::max(1u, count));
    d.compute_units = d.threads;
    d.gemm_gflops = gemm_gflops;  // of the whole processor: the partitioner splits it among sharers
    d.copy_gbps = copy_gbps;
    d.processor = std::string(host) + ":cpu";
    out.push_back(d);
  }
  return out;
}

}  // namespace convoy
