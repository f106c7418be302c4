// The partitioner: the DP against brute force on synthetic chains, memory limits, replicas, shared
// processors, the cut rules on real models, and extract_stage chained against the unsplit model.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/executor.h"
#include "runtime/graph/serialize.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"
#include "runtime/partition/partition.h"

namespace convoy {
namespace {

ChainCosts random_chain(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<double> flops(1e6, 1e9), bytes(1e5, 1e7);
  std::uniform_int_distribution<uint64_t> act(1000, 4000000), wbytes(0, 8000000);
  std::bernoulli_distribution allowed(0.75), shared(0.2);
  ChainCosts c;
  for (size_t i = 0; i < n; ++i) {
    c.flops.push_back(flops(rng));
    c.bytes.push_back(bytes(rng));
    c.live_bytes.push_back(act(rng));
    c.names.push_back("op" + std::to_string(i));
    WeightUse w{wbytes(rng), {static_cast<int>(i)}};
    if (i + 1 < n && shared(rng)) w.users.push_back(static_cast<int>(i + 1));  // a tied weight
    c.weights.push_back(w);
  }
  for (size_t i = 0; i <= n; ++i) {
    c.cut_bytes.push_back(act(rng));
    c.cut_allowed.push_back(allowed(rng) ? 1 : 0);
  }
  return c;
}

std::vector<DeviceProfile> random_devices(std::mt19937& rng, size_t d, bool shared_processors) {
  std::uniform_real_distribution<double> gf(5, 50), bw(2, 20);
  std::uniform_int_distribution<uint64_t> mem(8000000, 40000000);
  std::uniform_int_distribution<int> pick(0, 2);
  std::vector<DeviceProfile> out;
  for (size_t i = 0; i < d; ++i) {
    DeviceProfile p;
    p.worker = "w" + std::to_string(pick(rng));  // some devices share a worker process
    p.device = static_cast<int>(i);
    p.gflops = gf(rng);
    p.copy_gbps = bw(rng);
    p.memory_bytes = mem(rng);
    p.processor = shared_processors ? "host" + std::to_string(pick(rng)) : "";
    out.push_back(p);
  }
  return out;
}

// Every plan: every set of allowed cuts, every ascending assignment of disjoint device runs.
double brute_force(const ChainCosts& c, const std::vector<DeviceProfile>& devices,
                   const PartitionOptions& opt) {
  std::vector<int> allowed;
  for (size_t i = 1; i < c.size(); ++i)
    if (c.cut_allowed[i]) allowed.push_back(static_cast<int>(i));
  const size_t D = devices.size();
  double best = 0;
  for (uint32_t mask = 0; mask < (1u << allowed.size()); ++mask) {
    std::vector<int> cuts{0};
    for (size_t i = 0; i < allowed.size(); ++i)
      if (mask & (1u << i)) cuts.push_back(allowed[i]);
    cuts.push_back(static_cast<int>(c.size()));
    size_t stages = cuts.size() - 1;
    std::vector<std::pair<size_t, size_t>> ranges(stages);
    std::function<void(size_t, size_t)> rec = [&](size_t k, size_t from) {
      if (k == stages) {
        Plan p = evaluate_plan(c, devices, cuts, ranges, opt);
        best = std::max(best, p.throughput);
        return;
      }
      for (size_t e = from; e < D; ++e)
        for (size_t d = e + 1; d <= D; ++d) {
          ranges[k] = {e, d};
          rec(k + 1, d);
        }
    };
    rec(0, 0);
  }
  return best;
}

// The DP's plan re-evaluated by evaluate_plan: the numbers it reports are the model's.
Plan reevaluate(const ChainCosts& c, const std::vector<DeviceProfile>& devices, const Plan& plan,
                const PartitionOptions& opt) {
  std::vector<size_t> order = device_order(devices);
  std::vector<size_t> pos(devices.size());
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  std::vector<int> cuts{0};
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const PlanStage& s : plan.stages) {
    cuts.push_back(s.last + 1);
    size_t e = pos[s.devices.front().index];
    ranges.emplace_back(e, e + s.devices.size());
    for (size_t k = 0; k < s.devices.size(); ++k) REQUIRE(pos[s.devices[k].index] == e + k);
  }
  return evaluate_plan(c, devices, cuts, ranges, opt);
}

void check_against_brute_force(bool shared_processors, int cases, uint32_t seed) {
  std::mt19937 rng(seed);
  int infeasible = 0;
  for (int t = 0; t < cases; ++t) {
    size_t n = 2 + rng() % 5, d = 1 + rng() % 4;
    ChainCosts c = random_chain(rng, n);
    std::vector<DeviceProfile> devices = random_devices(rng, d, shared_processors);
    PartitionOptions opt;
    opt.link_gbps = 1 + rng() % 4;
    double brute = brute_force(c, devices, opt);
    if (brute == 0) {
      ++infeasible;
      CHECK_THROWS_AS(partition_chain(c, devices, opt), Error);
      continue;
    }
    Plan plan = partition_chain(c, devices, opt);
    INFO("case " << t << " n=" << n << " devices=" << d << "\n" << format_plan(plan));
    CHECK(plan.throughput == Approx(brute).epsilon(1e-12));
    Plan again = reevaluate(c, devices, plan, opt);
    CHECK(again.throughput == Approx(plan.throughput).epsilon(1e-12));
    for (const PlanStage& s : plan.stages)
      for (const StageDevice& dev : s.devices) CHECK(dev.memory_bytes <= devices[dev.index].memory_bytes);
    // Deterministic: the same input gives the same plan.
    Plan twice = partition_chain(c, devices, opt);
    REQUIRE(twice.stages.size() == plan.stages.size());
    for (size_t k = 0; k < plan.stages.size(); ++k) {
      CHECK(twice.stages[k].first == plan.stages[k].first);
      CHECK(twice.stages[k].devices.size() == plan.stages[k].devices.size());
    }
  }
  CHECK(infeasible < cases);
}

TEST_CASE("partition: the DP equals brute force on random chains", "[partition]") {
  check_against_brute_force(false, 300, 7);
}

TEST_CASE("partition: the DP equals brute force with shared processors", "[partition]") {
  check_against_brute_force(true, 300, 11);
}

ChainCosts uniform_chain(size_t n, double flops, uint64_t weight, uint64_t act) {
  ChainCosts c;
  for (size_t i = 0; i < n; ++i) {
    c.flops.push_back(flops);
    c.bytes.push_back(0);
    c.live_bytes.push_back(act);
    c.weights.push_back({weight, {static_cast<int>(i)}});
  }
  c.cut_bytes.assign(n + 1, act);
  c.cut_allowed.assign(n + 1, 1);
  return c;
}

DeviceProfile device(const std::string& worker, double gflops, uint64_t memory,
                     const std::string& processor = "") {
  return DeviceProfile{worker, 0, gflops, 100, memory, processor};
}

TEST_CASE("partition: memory limits split the model, and nothing fitting is an error", "[partition]") {
  ChainCosts c = uniform_chain(8, 1e9, 100 << 20, 1 << 20);  // 8 × 100 MiB of weights
  std::vector<DeviceProfile> devices;
  for (int i = 0; i < 4; ++i) devices.push_back(device("w" + std::to_string(i), 10, 300ull << 20));
  Plan plan = partition_chain(c, devices);
  REQUIRE(plan.stages.size() >= 3);  // at most 2 layers (200 MiB + buffers) fit a 300 MiB device
  for (const PlanStage& s : plan.stages) {
    CHECK(s.last - s.first + 1 <= 2);
    for (const StageDevice& d : s.devices) CHECK(d.memory_bytes <= (300ull << 20));
  }
  CHECK(plan.stages.front().first == 0);
  CHECK(plan.stages.back().last == 7);

  std::vector<DeviceProfile> small{device("w0", 10, 50 << 20), device("w1", 10, 50 << 20)};
  try {
    partition_chain(c, small);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kInvalidInput);
    CHECK(std::string(e.what()).find("does not fit") != std::string::npos);
  }
  try {
    partition_chain(c, {});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("no devices") != std::string::npos);
  }
}

TEST_CASE("partition: a heavy stage that cannot be split gets replicas", "[partition]") {
  ChainCosts c = uniform_chain(4, 1e8, 1 << 20, 1 << 10);
  c.flops[2] = 4e9;            // one heavy node
  c.cut_allowed.assign(5, 1);  // cutting is allowed everywhere, but node 2 is one node
  std::vector<DeviceProfile> devices;
  for (int i = 0; i < 5; ++i) devices.push_back(device("w" + std::to_string(i), 10, 1ull << 30));
  PartitionOptions opt;
  opt.link_gbps = 1000;
  Plan plan = partition_chain(c, devices, opt);
  INFO(format_plan(plan));
  size_t most = 0;
  for (const PlanStage& s : plan.stages) most = std::max(most, s.devices.size());
  CHECK(most >= 2);
  // Only a data-parallel plan beats the heavy node's 0.4 s on one device.
  CHECK(plan.throughput > 1 / 0.4 * 1.5);
}

TEST_CASE("partition: devices sharing a processor share its throughput", "[partition]") {
  ChainCosts c = uniform_chain(4, 1e9, 1 << 20, 1 << 10);
  PartitionOptions opt;
  opt.link_gbps = 1e6;
  // Two PoCL workers on one host, each measured alone at 10 GFLOP/s.
  std::vector<DeviceProfile> shared{device("a", 10, 1ull << 30, "host"), device("b", 10, 1ull << 30, "host")};
  std::vector<DeviceProfile> separate{device("a", 10, 1ull << 30, "h1"), device("b", 10, 1ull << 30, "h2")};
  Plan ps = partition_chain(c, shared, opt), pp = partition_chain(c, separate, opt);
  // 4 GFLOP per micro-batch: the host does 10 GFLOP/s whatever the split; two hosts do twice that.
  CHECK(ps.throughput == Approx(2.5).epsilon(1e-3));
  CHECK(pp.throughput == Approx(5.0).epsilon(1e-3));
  // A plan that uses both shared devices is no faster than one device.
  Plan both = evaluate_plan(c, shared, {0, 2, 4}, {{0, 1}, {1, 2}}, opt);
  Plan one = evaluate_plan(c, shared, {0, 4}, {{0, 1}}, opt);
  CHECK(both.throughput <= one.throughput * (1 + 1e-9));
}

// ---------------------------------------------------------------------------------------------------
// Real models

struct Fixture {
  Model model;
  std::vector<IValue> inputs;
  std::vector<TypePtr> types;
};

const OpRegistry& registry() {
  static OpRegistry r = make_default_registry();
  return r;
}

Fixture load_fixture(const std::string& name, int num_inputs = 1) {
  std::string dir = std::string(CONVOY_SOURCE_DIR) + "/tests/fixtures/models/torch2/" + name;
  LoadOptions lo;
  lo.num_inputs = num_inputs;
  Fixture f{load_model(dir + "/model.pt", registry(), lo), {}, {}};
  for (int i = 0; i < num_inputs; ++i) {
    Tensor t = read_npy(dir + "/input_" + std::to_string(i) + ".npy");
    f.inputs.emplace_back(t);
    f.types.push_back(Type::tensor(t.dtype(), t.sizes()));
  }
  return f;
}

bool same_value(const IValue& a, const IValue& b) {
  if (a.is_tensor() && b.is_tensor()) {
    const Tensor &x = a.to_tensor(), &y = b.to_tensor();
    return x.dtype() == y.dtype() && x.sizes() == y.sizes() && x.to_doubles() == y.to_doubles();
  }
  if ((a.is_tuple() || a.is_list()) && (b.is_tuple() || b.is_list())) {
    const IValueList &x = a.to_list_or_tuple(), &y = b.to_list_or_tuple();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!same_value(x[i], y[i])) return false;
    return true;
  }
  return a.repr() == b.repr();
}

// Splits at the given top-level cuts, ships every stage through serialize/deserialize, and chains
// the stages with the reference executor.
std::vector<IValue> run_split(const Graph& g, const std::vector<int>& cuts,
                              const std::vector<IValue>& inputs) {
  std::vector<IValue> values = inputs;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) {
    std::unique_ptr<Graph> stage = extract_stage(g, cuts[k], cuts[k + 1] - 1);
    std::vector<uint8_t> wire = serialize_graph(*stage);
    std::unique_ptr<Graph> back = deserialize_graph(wire.data(), wire.size(), registry());
    REQUIRE(back->inputs().size() == values.size());
    ReferenceExecutor exec(*back);
    values = exec.run(values);
  }
  return values;
}

void check_cuts_are_tensors(const Graph& g, const ChainCosts& c) {
  for (size_t cut = 1; cut < c.size(); ++cut) {
    if (!c.cut_allowed[cut]) continue;
    for (const Value* v : values_across_cut(g, static_cast<int>(cut))) {
      INFO("cut " << cut << " value %" << v->id << " : " << v->type->str());
      CHECK(v->type->is(TypeKind::kTensor));
    }
  }
}

TEST_CASE("partition: cuts never cross non-tensor values", "[partition]") {
  for (const char* name : {"cnn", "scripted", "gpt", "lstm", "vit"}) {
    Fixture f = load_fixture(name);
    ChainCosts c = analyse_graph(*f.model.graph, f.types);
    INFO(name);
    check_cuts_are_tensors(*f.model.graph, c);
    int allowed = 0;
    for (size_t i = 1; i < c.size(); ++i) allowed += c.cut_allowed[i];
    CHECK(allowed >= 1);
  }
  // The scripted model passes ints and lists between its nodes: some cuts must be refused.
  Fixture f = load_fixture("scripted");
  ChainCosts c = analyse_graph(*f.model.graph, f.types);
  bool refused = false;
  for (size_t cut = 1; cut < c.size(); ++cut) {
    if (c.cut_allowed[cut]) continue;
    for (const Value* v : values_across_cut(*f.model.graph, static_cast<int>(cut)))
      refused = refused || !v->type->is(TypeKind::kTensor);
  }
  CHECK(refused);
}

TEST_CASE("partition: cost model counts conv and linear FLOPs", "[partition]") {
  Fixture f = load_fixture("cnn");
  std::vector<NodeCost> costs = node_costs(*f.model.graph, f.types);
  const Block* top = f.model.graph->top();
  double conv = 0, linear = 0;
  for (size_t i = 0; i < costs.size(); ++i) {
    const std::string& k = top->nodes[i]->kind;
    if (k == "aten::_convolution" && conv == 0) conv = costs[i].flops;
    if (k == "aten::linear") linear = costs[i].flops;
  }
  // First conv: input [5, 3, 21, 21], weight [12, 3, 3, 3], stride/padding 1 → output [5, 12, 21, 21].
  CHECK(conv == Approx(2.0 * 5 * 12 * 21 * 21 * 27 + 5 * 12 * 21 * 21));
  // linear: [5, 16] × [16, 10]ᵀ.
  CHECK(linear == Approx(2.0 * 5 * 10 * 16 + 5 * 10));
}

TEST_CASE("partition: extracted stages chained equal the unsplit model", "[partition]") {
  for (const char* name : {"cnn", "gpt", "lstm", "scripted"}) {
    INFO(name);
    Fixture f = load_fixture(name);
    const Graph& g = *f.model.graph;
    ChainCosts c = analyse_graph(g, f.types);
    std::vector<int> allowed;
    for (size_t i = 1; i < c.size(); ++i)
      if (c.cut_allowed[i]) allowed.push_back(static_cast<int>(i));
    REQUIRE(!allowed.empty());
    std::vector<int> cuts{0};
    if (allowed.size() >= 2) {
      cuts.push_back(allowed[allowed.size() / 3]);
      if (allowed[2 * allowed.size() / 3] > cuts.back()) cuts.push_back(allowed[2 * allowed.size() / 3]);
    } else {
      cuts.push_back(allowed[0]);
    }
    cuts.push_back(static_cast<int>(c.size()));
    ReferenceExecutor whole(g);
    std::vector<IValue> expected = whole.run(f.inputs);
    std::vector<IValue> got = run_split(g, cuts, f.inputs);
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(same_value(got[i], expected[i]));

    // A plan over three small devices, executed stage by stage.
    std::vector<DeviceProfile> devices;
    for (int i = 0; i < 3; ++i) devices.push_back(device("w" + std::to_string(i), 1, 1ull << 30));
    PartitionOptions opt;
    opt.link_gbps = 1e6;
    Plan plan = partition(g, f.types, devices, opt);
    std::string table = format_plan(plan);
    CHECK(table.find("predicted throughput") != std::string::npos);
    std::vector<int> plan_cuts{0};
    for (const PlanStage& s : plan.stages) plan_cuts.push_back(s.last + 1);
    std::vector<IValue> planned = run_split(g, plan_cuts, f.inputs);
    for (size_t i = 0; i < planned.size(); ++i) CHECK(same_value(planned[i], expected[i]));
  }
}

}  // namespace
}  // namespace convoy
