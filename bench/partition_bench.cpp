// convoy-bench-partition: plans a synthetic 1,000-node chain over 64 simulated devices (16 hosts of
// 4, two of which run two PoCL workers on one processor) and prints the planning time. The issue's
// bar: under a second. Usage: convoy-bench-partition [NODES] [DEVICES] [REPEATS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "runtime/partition/partition.h"

using namespace convoy;

int main(int argc, char** argv) {
  size_t nodes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  size_t num_devices = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> flops(1e7, 5e9), bytes(1e5, 5e7);
  std::uniform_int_distribution<uint64_t> act(1 << 16, 16 << 20), wb(1 << 20, 64 << 20);
  std::bernoulli_distribution allowed(0.9);
  ChainCosts c;
  uint64_t total_weights = 0;
  for (size_t i = 0; i < nodes; ++i) {
    c.flops.push_back(flops(rng));
    c.bytes.push_back(bytes(rng));
    c.live_bytes.push_back(act(rng));
    c.names.push_back("aten::op" + std::to_string(i % 7));
    uint64_t w = wb(rng);
    total_weights += w;
    c.weights.push_back({w, {static_cast<int>(i)}});
  }
  for (size_t i = 0; i <= nodes; ++i) {
    c.cut_bytes.push_back(act(rng));
    c.cut_allowed.push_back(allowed(rng) ? 1 : 0);
  }
  std::vector<DeviceProfile> devices;
  for (size_t i = 0; i < num_devices; ++i) {
    DeviceProfile p;
    p.worker = "host" + std::to_string(i / 4) + "-w" + std::to_string(i % 4);
    p.device = 0;
    bool fast = (i / 4) % 2 == 0;
    p.gflops = fast ? 400 : 150;
    p.copy_gbps = fast ? 200 : 60;
    // Memory so tight that the model needs a pipeline of several stages.
    p.memory_bytes = std::max<uint64_t>(total_weights / 12, 2ull << 30);
    p.processor = i < 8 && i % 2 == 0 ? "cpu" + std::to_string(i / 2) : "";
    if (i < 8 && i % 2 == 1) p.processor = "cpu" + std::to_string(i / 2);  // PoCL pairs
    devices.push_back(p);
  }
  PartitionOptions opt;
  opt.link_gbps = 10;
  Plan plan;
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    plan = partition_chain(c, devices, opt);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    std::printf("run %d: planned %zu nodes over %zu devices in %.3f s\n", r, nodes, num_devices, s);
  }
  std::printf("%s", format_plan(plan).c_str());
  std::printf("best planning time: %.3f s (%zu stages, %.2f micro-batches/s predicted)\n", best,
              plan.stages.size(), plan.throughput);
  return 0;
}
