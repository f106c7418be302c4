// The partitioner's dynamic program, the plan evaluator it agrees with, and the plan printer.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "runtime/error.h"
#include "runtime/partition/partition.h"

namespace convoy {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Everything the recurrence needs in O(1) per candidate stage.
struct Model {
  const ChainCosts& costs;
  const PartitionOptions& opt;
  size_t n = 0;
  std::vector<int> cuts;                // allowed cut positions, ascending (cuts[0] = 0, back() = n)
  std::vector<double> pf, pb, po;       // prefix sums of flops, bytes and ops over units
  std::vector<uint64_t> weight, arena;  // K×K tables over cut indices [b][a], b < a
  size_t k = 0;

  // Devices in DP order.
  std::vector<size_t> order;
  std::vector<double> g, bw, slow;
  std::vector<uint64_t> mem;
  std::vector<int> proc, worker;
  size_t d = 0;

  Model(const ChainCosts& c, const PartitionOptions& o) : costs(c), opt(o) {}

  uint64_t W(size_t b, size_t a) const { return weight[b * k + a]; }
  // Seconds units [u0, u1) take on a device of `g` FLOP/s and `bw` B/s.
  double compute(size_t u0, size_t u1, double g, double bw) const {
    return (pf[u1] - pf[u0]) / g + (pb[u1] - pb[u0]) / bw + (po[u1] - po[u0]) * opt.op_seconds;
  }
  uint64_t A(size_t b, size_t a) const { return arena[b * k + a]; }
};

void check_costs(const ChainCosts& c) {
  size_t n = c.size();
  CONVOY_CHECK(n > 0, "the partitioner was given an empty graph");
  CONVOY_CHECK(c.bytes.size() == n && c.live_bytes.size() == n && c.cut_bytes.size() == n + 1 &&
                   c.cut_allowed.size() == n + 1,
               "the partitioner's cost arrays disagree in length (", n, " units)");
  for (const WeightUse& w : c.weights)
    for (int u : w.users)
      CONVOY_CHECK(u >= 0 && static_cast<size_t>(u) < n, "weight user ", u, " out of range");
}

void build_tables(Model& m) {
  const ChainCosts& c = m.costs;
  m.n = c.size();
  for (size_t i = 0; i <= m.n; ++i)
    if (i == 0 || i == m.n || c.cut_allowed[i]) m.cuts.push_back(static_cast<int>(i));
  m.k = m.cuts.size();
  m.pf.assign(m.n + 1, 0);
  m.pb.assign(m.n + 1, 0);
  m.po.assign(m.n + 1, 0);
  for (size_t i = 0; i < m.n; ++i) {
    m.pf[i + 1] = m.pf[i] + c.flops[i];
    m.pb[i + 1] = m.pb[i] + c.bytes[i];
    m.po[i + 1] = m.po[i] + (c.ops.size() == m.n ? c.ops[i] : 0.0);
  }
  std::vector<std::vector<size_t>> unit_weights(m.n);
  for (size_t w = 0; w < c.weights.size(); ++w)
    for (int u : c.weights[w].users) unit_weights[static_cast<size_t>(u)].push_back(w);
  m.weight.assign(m.k * m.k, 0);
  m.arena.assign(m.k * m.k, 0);
  std::vector<size_t> seen(c.weights.size(), SIZE_MAX);
  for (size_t b = 0; b + 1 < m.k; ++b) {
    uint64_t wsum = 0, amax = 0;
    size_t a = b + 1;
    for (size_t u = static_cast<size_t>(m.cuts[b]); u < m.n; ++u) {
      for (size_t w : unit_weights[u])
        if (seen[w] != b) {
          seen[w] = b;
          wsum += c.weights[w].bytes;
        }
      amax = std::max(amax, c.live_bytes[u]);
      if (u + 1 == static_cast<size_t>(m.cuts[a])) {
        m.weight[b * m.k + a] = wsum;
        m.arena[b * m.k + a] = amax;
        ++a;
      }
    }
  }
}

void build_devices(Model& m, const std::vector<DeviceProfile>& devices) {
  m.order = device_order(devices);
  m.d = m.order.size();
  std::map<std::string, int> procs, workers;
  for (size_t x : m.order) {
    const DeviceProfile& p = devices[x];
    CONVOY_CHECK(p.gflops > 0 && p.copy_gbps > 0, "device ", p.worker, "/", p.device,
                 " has a non-positive profile (", p.gflops, " GFLOP/s, ", p.copy_gbps, " GB/s)");
    m.g.push_back(p.gflops * 1e9);
    m.bw.push_back(p.copy_gbps * 1e9);
    m.slow.push_back(std::isfinite(p.slowdown) && p.slowdown > 1 ? p.slowdown : 1);
    m.mem.push_back(p.memory_bytes);
    // An empty processor key is a processor of its own.
    std::string key = p.processor.empty() ? "\x01" + std::to_string(x) : p.processor;
    m.proc.push_back(procs.emplace(key, static_cast<int>(procs.size())).first->second);
    m.worker.push_back(workers.emplace(p.worker, static_cast<int>(workers.size())).first->second);
  }
}

// Facts of a device run [e, d): slowest compute and bandwidth, least memory, one worker or not, and
// how many of its devices each processor run holds.
struct RunFacts {
  double gmin = kInf, bwmin = kInf;
  double slowmax = 1;  // the slowest measured device of the run paces its replicas
  uint64_t memmin = UINT64_MAX;
  bool single_worker = true;
  int k_first = 0, k_last = 0, k_mid = 0;  // devices of the first, last and busiest middle processor
  bool one_proc = true;
};

// What a stage [b, a) on run [e, d) gives, following state (T, L).
struct StageEval {
  bool fits = false;
  double compute = 0, receive = 0, seconds = 0;
  double rate = 0;      // replicas / seconds
  double T = 0, L = 0;  // throughput bound so far, load of the open processor after the stage
  uint64_t memory = 0;
};

struct Evaluator {
  const Model& m;
  std::vector<RunFacts> runs;  // [e * (D + 1) + d]

  explicit Evaluator(const Model& model) : m(model) {
    size_t D = m.d;
    runs.resize((D + 1) * (D + 1));
    for (size_t d = 1; d <= D; ++d) {
      RunFacts r;
      int cur_proc = m.proc[d - 1], cur_count = 0;
      int last_count = 0;
      bool in_last = true;
      int mid_max = 0;
      for (size_t e = d; e-- > 0;) {
        r.gmin = std::min(r.gmin, m.g[e]);
        r.bwmin = std::min(r.bwmin, m.bw[e]);
        r.slowmax = std::max(r.slowmax, m.slow[e]);
        r.memmin = std::min(r.memmin, m.mem[e]);
        r.single_worker = r.single_worker && m.worker[e] == m.worker[d - 1];
        if (m.proc[e] != cur_proc) {
          if (in_last) {
            last_count = cur_count;
            in_last = false;
          } else {
            mid_max = std::max(mid_max, cur_count);
          }
          cur_proc = m.proc[e];
          cur_count = 0;
        }
        ++cur_count;
        RunFacts out = r;
        out.one_proc = in_last;
        out.k_first = cur_count;
        out.k_last = in_last ? cur_count : last_count;
        out.k_mid = mid_max;
        runs[e * (D + 1) + d] = out;
      }
    }
  }

  const RunFacts& run(size_t e, size_t d) const { return runs[e * (m.d + 1) + d]; }

  // prev_same_worker: the previous stage ran on one worker, the same as every device from its last
  // one through e - 1. prev_L: load of processor proc(e - 1) so far (0 if e == 0).
  StageEval eval(size_t b, size_t a, size_t e, size_t d, double prev_T, double prev_L,
                 bool prev_same_worker) const {
    StageEval s;
    const RunFacts& r = run(e, d);
    const ChainCosts& c = m.costs;
    size_t u0 = static_cast<size_t>(m.cuts[b]), u1 = static_cast<size_t>(m.cuts[a]);
    uint64_t in = c.cut_bytes[u0], out = c.cut_bytes[u1];
    s.memory = m.W(b, a) + m.A(b, a) + static_cast<uint64_t>(std::max(0, m.opt.max_in_flight)) * (in + out);
    s.fits = s.memory <= r.memmin;
    double replicas = static_cast<double>(d - e);
    s.compute = m.compute(u0, u1, r.gmin, r.bwmin) * r.slowmax;
    bool same = u0 > 0 && prev_same_worker && r.single_worker && e > 0 && m.worker[e - 1] == m.worker[e];
    double link = m.opt.link_gbps * 1e9;
    s.receive = static_cast<double>(in) / (same ? m.opt.same_worker_gbps * 1e9 : link);
    s.seconds = s.receive + s.compute;
    if (u1 == m.n) s.seconds += static_cast<double>(out) / link;  // results back to the coordinator
    s.rate = s.seconds > 0 ? replicas / s.seconds : kInf;
    // Processor loads: each replica busies its processor for `compute` per micro-batch it takes,
    // and takes 1/replicas of them.
    double per = s.compute / replicas;
    bool continues = e > 0 && m.proc[e - 1] == m.proc[e];
    double first_load = (continues ? prev_L : 0) + r.k_first * per;
    double last_load = r.one_proc ? first_load : r.k_last * per;
    double worst = std::max({first_load, last_load, r.k_mid * per});
    double proc_bound = worst > 0 ? 1 / worst : kInf;
    s.T = std::min({prev_T, s.rate, proc_bound});
    s.L = last_load;
    return s;
  }
};

// One entry of a state's Pareto front over (throughput bound T, open processor load L): the DP keeps
// every entry no other beats on both, so a lower T with a lower load on a processor that the next
// stage continues is not lost. Without shared processors L is always 0 and the front has one entry.
struct Entry {
  double T = -1;
  double L = 0;
  // Back pointer: a stage from entry `p` of state (b, e, s), or a skip from entry `p` of (a, d - 1, s).
  int b = -1, e = -1, s = -1, p = -1;
  bool skip = false;
};

struct Front {
  std::vector<Entry> entries;
  double T0 = -1;  // the best T among entries with L == 0: anything with T <= T0 is dominated

  // Existing entries win ties, so the first plan found is kept (deterministic).
  void add(const Entry& c) {
    for (const Entry& x : entries)
      if (x.T >= c.T && x.L <= c.L) return;
    std::erase_if(entries, [&](const Entry& x) { return c.T >= x.T && c.L <= x.L; });
    entries.push_back(c);
    if (c.L == 0) T0 = std::max(T0, c.T);
  }
};

Plan make_plan(const Model& m, const Evaluator& ev, const std::vector<DeviceProfile>& devices,
               const std::vector<std::pair<size_t, size_t>>& b_a,
               const std::vector<std::pair<size_t, size_t>>& e_d) {
  Plan plan;
  plan.micro_batches = m.opt.micro_batches;
  plan.unit_names = m.costs.names;
  double T = kInf, L = 0;
  bool same = false;
  std::vector<double> secs;
  for (size_t i = 0; i < b_a.size(); ++i) {
    auto [b, a] = b_a[i];
    auto [e, d] = e_d[i];
    if (i > 0) {
      size_t prev_last = e_d[i - 1].second - 1;
      bool keep_proc = m.proc[prev_last] == m.proc[e];
      if (!keep_proc) L = 0;
      bool w = same;
      for (size_t x = prev_last; x < e && w; ++x) w = m.worker[x] == m.worker[prev_last];
      same = w;
    }
    StageEval s = ev.eval(b, a, e, d, T, i == 0 ? 0 : L, i > 0 && same);
    if (!s.fits) {
      plan.throughput = 0;
      return plan;
    }
    T = s.T;
    L = s.L;
    same = ev.run(e, d).single_worker;
    PlanStage st;
    st.first = m.cuts[b];
    st.last = m.cuts[a] - 1;
    for (size_t x = e; x < d; ++x) {
      const DeviceProfile& p = devices[m.order[x]];
      st.devices.push_back({m.order[x], p.worker, p.device, s.memory});
    }
    st.seconds = s.seconds;
    st.receive_seconds = s.receive;
    st.flops = m.pf[static_cast<size_t>(m.cuts[a])] - m.pf[static_cast<size_t>(m.cuts[b])];
    st.weight_bytes = m.W(b, a);
    st.arena_bytes = m.A(b, a);
    st.in_bytes = m.costs.cut_bytes[static_cast<size_t>(m.cuts[b])];
    st.out_bytes = m.costs.cut_bytes[static_cast<size_t>(m.cuts[a])];
    st.samples_per_second = s.rate;
    secs.push_back(s.seconds);
    plan.stages.push_back(std::move(st));
  }
  plan.throughput = T;
  plan.bubble = pipeline_bubble(secs, T, plan.micro_batches);
  return plan;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(u == 0 ? 0 : 1) << b << " " << units[u];
  return o.str();
}

std::string human_seconds(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(3);
  if (s < 1e-3)
    o << s * 1e6 << " us";
  else if (s < 1)
    o << s * 1e3 << " ms";
  else
    o << s << " s";
  return o.str();
}

}  // namespace

std::vector<size_t> device_order(const std::vector<DeviceProfile>& devices) {
  std::vector<size_t> order(devices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const DeviceProfile &a = devices[x], &b = devices[y];
    // Devices without a processor key sort as their own processor: after the keyed ones.
    bool ka = !a.processor.empty(), kb = !b.processor.empty();
    if (ka != kb) return ka;
    if (a.processor != b.processor) return a.processor < b.processor;
    if (a.worker != b.worker) return a.worker < b.worker;
    return a.device < b.device;
  });
  return order;
}

double pipeline_bubble(const std::vector<double>& stage_seconds, double throughput, int micro_batches) {
  if (stage_seconds.empty() || !(throughput > 0) || micro_batches <= 0 || std::isinf(throughput)) return 0;
  double sum = 0;
  for (double s : stage_seconds) sum += s;
  double interval = 1 / throughput;
  double ideal = micro_batches * interval;
  double makespan = sum + (micro_batches - 1) * interval;
  return makespan > 0 ? std::max(0.0, 1 - ideal / makespan) : 0;
}

Plan partition_chain(const ChainCosts& costs, const std::vector<DeviceProfile>& devices,
                     const PartitionOptions& options) {
  CONVOY_CHECK(!devices.empty(), "cannot plan: no devices (register at least one worker)");
  CONVOY_CHECK(options.link_gbps > 0 && options.same_worker_gbps > 0, "link bandwidths must be positive");
  check_costs(costs);
  Model m(costs, options);
  build_tables(m);
  build_devices(m, devices);
  Evaluator ev(m);
  const size_t K = m.k, D = m.d;
  auto idx = [&](size_t a, size_t d, int s) { return (a * (D + 1) + d) * 2 + static_cast<size_t>(s); };
  // Upper bound on throughput: every device doing its share of the whole model at the best speed
  // and bandwidth any device has (valid for any plan: see docs/partitioner.md).
  double gmax = 0, bwmax = 0;
  for (size_t x = 0; x < D; ++x) {
    gmax = std::max(gmax, m.g[x]);
    bwmax = std::max(bwmax, m.bw[x]);
  }
  double whole = m.pf[m.n] / gmax + m.pb[m.n] / bwmax;
  double upper = whole > 0 ? static_cast<double>(D) / whole : kInf;
  // Bounds on what a state can still reach: units [0, a) on devices [0, d), and the rest of the
  // units on devices [d, D). Each is valid for any plan (docs/partitioner.md).
  std::vector<double> cg(D + 1, 0), cbw(D + 1, 0);
  for (size_t x = 0; x < D; ++x) {
    cg[x + 1] = cg[x] + m.g[x];
    cbw[x + 1] = cbw[x] + m.bw[x];
  }
  auto bound = [&](double F, double B, double G, double BW, double devs) {
    double b = kInf;
    if (F > 0) b = std::min(b, G / F);
    if (B > 0) b = std::min(b, BW / B);
    double c = F / gmax + B / bwmax;
    if (c > 0) b = std::min(b, devs / c);
    return b;
  };
  auto viable = [&](size_t a, size_t d, double lb) {
    if (lb <= 0) return true;
    size_t u = static_cast<size_t>(m.cuts[a]);
    double pre = bound(m.pf[u], m.pb[u], cg[d], cbw[d], static_cast<double>(d));
    double post = bound(m.pf[m.n] - m.pf[u], m.pb[m.n] - m.pb[u], cg[D] - cg[d], cbw[D] - cbw[d],
                        static_cast<double>(D - d));
    return pre >= lb && post >= lb;
  };
  // Run the recurrence discarding partial plans below `lb`: if it still finds a plan of at least
  // `lb`, that plan is the optimum (and the same plan as without the threshold: a discarded entry
  // never dominates or ties one that is kept). Otherwise lower `lb` and run again; the last try has none.
  std::vector<Front> f;
  const Entry* best = nullptr;
  int best_s = 0;
  const double ladder[] = {0.9, 0.75, 0.6, 0.45, 0.3, 0.15, 0.05, 0};
  for (double frac : ladder) {
    const double lb = std::isfinite(upper) ? upper * frac : 0;
    f.assign(K * (D + 1) * 2, Front{});
    f[idx(0, 0, 0)].add(Entry{kInf, 0, -1, -1, -1, -1, false});
    for (size_t a = 0; a < K; ++a) {
      for (size_t d = 1; d <= D; ++d) {
        if (!viable(a, d, lb)) continue;
        // The open load matters only if the next device continues the processor of device d - 1.
        const bool open = d < D && m.proc[d] == m.proc[d - 1];
        // Device d - 1 unused.
        for (int s = 0; s < 2; ++s) {
          const Front& pf = f[idx(a, d - 1, s)];
          bool same_proc = d >= 2 && m.proc[d - 1] == m.proc[d - 2];
          int ns = (s == 1 && d >= 2 && m.worker[d - 1] == m.worker[d - 2]) ? 1 : 0;
          for (size_t i = 0; i < pf.entries.size(); ++i) {
            const Entry& p = pf.entries[i];
            double L = same_proc && open ? p.L : 0;
            f[idx(a, d, ns)].add(
                Entry{p.T, L, static_cast<int>(a), static_cast<int>(d - 1), s, static_cast<int>(i), true});
          }
        }
        if (a == 0) continue;
        // Stage [b, a) on devices [e, d).
        for (size_t e = d; e-- > 0;) {
          if (m.opt.max_replicas > 0 && d - e > static_cast<size_t>(m.opt.max_replicas)) break;
          const RunFacts& r = ev.run(e, d);
          int ns = r.single_worker ? 1 : 0;
          Front& t = f[idx(a, d, ns)];
          const double replicas = static_cast<double>(d - e);
          if (m.W(a - 1, a) + m.A(a - 1, a) > r.memmin) break;  // less memory with every extra replica
          for (size_t b = a; b-- > 0;) {
            if (m.W(b, a) + m.A(b, a) > r.memmin) break;  // grows as the stage grows
            size_t u0 = static_cast<size_t>(m.cuts[b]), u1 = static_cast<size_t>(m.cuts[a]);
            double compute = m.compute(u0, u1, r.gmin, r.bwmin) * r.slowmax;
            if (compute > 0 && (replicas / compute <= t.T0 || replicas / compute < lb))
              break;  // only slower as the stage grows
            for (int s = 0; s < 2; ++s) {
              const Front& pf = f[idx(b, e, s)];
              for (size_t i = 0; i < pf.entries.size(); ++i) {
                const Entry& p = pf.entries[i];
                if (p.T <= t.T0 || p.T < lb) continue;
                StageEval se = ev.eval(b, a, e, d, p.T, p.L, s == 1);
                if (!se.fits || se.T < lb) continue;
                t.add(Entry{se.T, open ? se.L : 0, static_cast<int>(b), static_cast<int>(e), s,
                            static_cast<int>(i), false});
              }
            }
          }
        }
      }
    }
    best = nullptr;
    for (int s = 0; s < 2; ++s)
      for (const Entry& st : f[idx(K - 1, D, s)].entries)
        if (st.T > 0 && (!best || st.T > best->T)) {
          best = &st;
          best_s = s;
        }
    if (best && best->T >= lb) break;
    best = nullptr;
  }
  if (!best) {
    uint64_t most = 0, total = 0;
    for (const DeviceProfile& p : devices) most = std::max(most, p.memory_bytes);
    for (const WeightUse& w : costs.weights) total += w.bytes;
    uint64_t smallest = UINT64_MAX;
    for (size_t a = 1; a < K; ++a) smallest = std::min(smallest, m.W(a - 1, a) + m.A(a - 1, a));
    fail(ErrorKind::kInvalidInput, "cannot plan: the model does not fit the devices' memory (",
         devices.size(), " devices, the largest has ", human_bytes(static_cast<double>(most)),
         "; the model's weights total ", human_bytes(static_cast<double>(total)),
         " and its largest indivisible stage needs ", human_bytes(static_cast<double>(smallest)),
         " before in-flight buffers)");
  }
  // Walk back.
  std::vector<std::pair<size_t, size_t>> b_a, e_d;
  size_t a = K - 1, d = D;
  int s = best_s;
  const Entry* st = best;
  while (a > 0) {
    CONVOY_ASSERT(st != nullptr && st->T >= 0, "partitioner back pointer to an unreachable state");
    size_t pa = st->skip ? a : static_cast<size_t>(st->b), pd = static_cast<size_t>(st->e);
    if (!st->skip) {
      b_a.emplace_back(pa, a);
      e_d.emplace_back(pd, d);
    }
    const Front& prev = f[idx(pa, pd, st->s)];
    s = st->s;
    st = &prev.entries[static_cast<size_t>(st->p)];
    a = pa;
    d = pd;
  }
  (void)s;
  std::reverse(b_a.begin(), b_a.end());
  std::reverse(e_d.begin(), e_d.end());
  return make_plan(m, ev, devices, b_a, e_d);
}

Plan evaluate_plan(const ChainCosts& costs, const std::vector<DeviceProfile>& devices,
                   const std::vector<int>& cuts, const std::vector<std::pair<size_t, size_t>>& ranges,
                   const PartitionOptions& options) {
  CONVOY_CHECK(!devices.empty(), "cannot plan: no devices");
  check_costs(costs);
  Model m(costs, options);
  build_tables(m);
  build_devices(m, devices);
  Evaluator ev(m);
  CONVOY_CHECK(cuts.size() == ranges.size() + 1 && cuts.front() == 0 && cuts.back() == static_cast<int>(m.n),
               "evaluate_plan: cuts must run from 0 to n with one device range per stage");
  std::vector<std::pair<size_t, size_t>> b_a, e_d;
  size_t prev_end = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    auto b = std::lower_bound(m.cuts.begin(), m.cuts.end(), cuts[i]);
    auto a = std::lower_bound(m.cuts.begin(), m.cuts.end(), cuts[i + 1]);
    CONVOY_CHECK(b != m.cuts.end() && *b == cuts[i] && a != m.cuts.end() && *a == cuts[i + 1] && a > b,
                 "evaluate_plan: cut ", cuts[i], " or ", cuts[i + 1], " is not allowed or not ascending");
    auto [e, d] = ranges[i];
    CONVOY_CHECK(e < d && d <= m.d && e >= prev_end,
                 "evaluate_plan: device runs must ascend without overlap");
    prev_end = d;
    b_a.emplace_back(static_cast<size_t>(b - m.cuts.begin()), static_cast<size_t>(a - m.cuts.begin()));
    e_d.emplace_back(e, d);
  }
  return make_plan(m, ev, devices, b_a, e_d);
}

std::string format_plan(const Plan& plan) {
  std::ostringstream o;
  auto name = [&](int i) {
    return i >= 0 && static_cast<size_t>(i) < plan.unit_names.size() ? plan.unit_names[static_cast<size_t>(i)]
                                                                     : std::string("?");
  };
  o << std::left << std::setw(6) << "stage" << std::setw(14) << "nodes" << std::setw(48)
    << "ops (first .. last)" << std::setw(28) << "devices x replicas" << std::right << std::setw(12)
    << "time/mb" << std::setw(12) << "receive" << std::setw(12) << "link out" << std::setw(12) << "memory/dev"
    << std::setw(12) << "weights"
    << "\n";
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& s = plan.stages[i];
    std::string devs;
    for (size_t k = 0; k < s.devices.size(); ++k) {
      if (k) devs += ",";
      devs += s.devices[k].worker + "/" + std::to_string(s.devices[k].device);
    }
    devs += " x" + std::to_string(s.devices.size());
    std::string ops = name(s.first) + " .. " + name(s.last);
    o << std::left << std::setw(6) << i << std::setw(14)
      << ("[" + std::to_string(s.first) + ", " + std::to_string(s.last) + "]") << std::setw(48) << ops
      << std::setw(28) << devs << std::right << std::setw(12) << human_seconds(s.seconds) << std::setw(12)
      << human_seconds(s.receive_seconds) << std::setw(12) << human_bytes(static_cast<double>(s.out_bytes))
      << std::setw(12) << human_bytes(static_cast<double>(s.devices.empty() ? 0 : s.devices[0].memory_bytes))
      << std::setw(12) << human_bytes(static_cast<double>(s.weight_bytes)) << "\n";
  }
  o << std::fixed << std::setprecision(2) << "predicted throughput: " << plan.throughput
    << " micro-batches/s; pipeline bubble " << plan.bubble * 100 << "% at " << plan.micro_batches
    << " micro-batches\n";
  return o.str();
}

}  // namespace convoy
