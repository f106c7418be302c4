#include "coordinator/cli.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "coordinator/client.h"
#include "coordinator/cluster_config.h"
#include "coordinator/job_inputs.h"
#include "coordinator/job_spec.h"
#include "coordinator/local_workers.h"
#include "coordinator/planner.h"
#include "coordinator/server.h"
#include "runtime/error.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"

namespace convoy {

namespace {

using Clock = std::chrono::steady_clock;

// --- argument parsing ---------------------------------------------------------------------------

struct Args {
  std::vector<std::string> positional;
  std::string coordinator = kDefaultCoordinator;
  std::string config, backend, device, keys, out, name, role;
  bool wait = false, json = false, insecure = false, overwrite = false;
  long workers = -1;
};

// Parses `args` for `command`, accepting only the options in `allowed` (e.g. "--wait").
Args parse(const std::string& command, const std::vector<std::string>& args,
           const std::vector<std::string>& allowed, size_t max_positional) {
  Args out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 1 && a[0] == '-') {
      if (std::find(allowed.begin(), allowed.end(), a) == allowed.end())
        throw UsageError(command + ": unknown option " + a);
      auto value = [&]() -> std::string {
        if (i + 1 >= args.size()) throw UsageError(command + ": " + a + " needs a value");
        return args[++i];
      };
      if (a == "--wait") {
        out.wait = true;
      } else if (a == "--json") {
        out.json = true;
      } else if (a == "--coordinator") {
        out.coordinator = value();
      } else if (a == "--keys") {
        out.keys = value();
      } else if (a == "--insecure") {
        out.insecure = true;
      } else if (a == "--out") {
        out.out = value();
      } else if (a == "--name") {
        out.name = value();
      } else if (a == "--role") {
        out.role = value();
      } else if (a == "--config") {
        out.config = value();
      } else if (a == "--backend") {
        out.backend = value();
        if (out.backend != "opencl" && out.backend != "reference")
          throw UsageError(command + ": unknown backend '" + out.backend +
                           "' (this build has: reference, opencl)");
      } else if (a == "--workers") {
        std::string v = value();
        char* end = nullptr;
        out.workers = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || out.workers < 1 || out.workers > 1024)
          throw UsageError(command + ": --workers takes a number in [1, 1024], not '" + v + "'");
      }
    } else {
      out.positional.push_back(a);
    }
  }
  if (out.positional.size() > max_positional)
    throw UsageError(command + ": unexpected argument '" + out.positional.back() + "'");
  return out;
}

// The client's keys: --insecure, else --keys DIR (default: CONVOY_KEYS or ~/.local/state/convoy/keys).
ClientKeys client_keys(const Args& a) {
  if (a.insecure) return ClientKeys{true, {}, {}};
  return load_client_keys(a.keys.empty() ? default_client_keys_dir() : a.keys);
}

// The options every command that talks to a coordinator takes.
std::vector<std::string> with_client(std::vector<std::string> options) {
  for (const char* o : {"--coordinator", "--keys", "--insecure"}) options.push_back(o);
  return options;
}

uint64_t parse_job_id(const std::string& command, const std::string& text) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end || v == 0 || text[0] == '-')
    throw UsageError(command + ": a job is a positive number, not '" + text + "'");
  return v;
}

// --- formatting ---------------------------------------------------------------------------------

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  if (t < 60) return std::to_string(t) + " s";
  if (t < 3600) return std::to_string(t / 60) + " min " + std::to_string(t % 60) + " s";
  return std::to_string(t / 3600) + " h " + std::to_string(t % 3600 / 60) + " min";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string milliseconds(double s) {
  if (!(s > 0)) return "-";
  std::ostringstream o;
  o << std::setprecision(4) << s * 1e3;
  return o.str();
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "0";
  std::ostringstream o;
  o << std::setprecision(9) << v;
  return o.str();
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

const char* state_name(schema::JobStatus::State s) {
  using S = schema::JobStatus::State;
  switch (s) {
    case S::QUEUED:
      return "queued";
    case S::PLANNING:
      return "planning";
    case S::RUNNING:
      return "running";
    case S::DONE:
      return "done";
    case S::FAILED:
      return "failed";
    case S::CANCELLED:
      return "cancelled";
  }
  return "unknown";
}

// --- talking to the coordinator ------------------------------------------------------------------

void fill_submit(schema::SubmitJob::Builder s, const JobSpec& spec, const std::string& backend) {
  s.setJobFile(std::filesystem::absolute(spec.job_file).lexically_normal().string());
  s.setModel(spec.model);
  auto inputs = s.initInputs(static_cast<unsigned>(spec.inputs.size()));
  for (size_t i = 0; i < spec.inputs.size(); ++i) inputs.set(static_cast<unsigned>(i), spec.inputs[i]);
  s.setOutput(spec.output);
  s.setBatchSize(spec.batch_size);
  s.setName(std::filesystem::path(spec.job_file).filename().string());
  s.setBackend(backend);
  s.setMaxWorkers(spec.workers);
  s.setOverwrite(spec.overwrite);
}

std::vector<JobStatusInfo> query_status(CoordinatorClient& client, uint64_t job) {
  wire::OutMessage m;
  m.envelope().getBody().initStatusRequest().setJob(job);
  wire::InMessage reply = client.call(std::move(m));
  auto body = reply.envelope().getBody();
  CONVOY_CHECK_KIND(kIo, body.which() == schema::Envelope::Body::STATUS_REPLY,
                    "the coordinator answered a status request with something else");
  std::vector<JobStatusInfo> out;
  for (auto s : body.getStatusReply().getJobs()) out.push_back(read_job_status(s));
  return out;
}

uint64_t submit(CoordinatorClient& client, const JobSpec& spec, const std::string& backend) {
  wire::OutMessage m;
  fill_submit(m.envelope().getBody().initSubmitJob(), spec, backend);
  wire::InMessage reply = client.call(std::move(m));
  auto body = reply.envelope().getBody();
  CONVOY_CHECK_KIND(kIo, body.which() == schema::Envelope::Body::SUBMITTED,
                    "the coordinator answered a submission with something else");
  return body.getSubmitted().getJob();
}

// Set by SIGINT/SIGTERM while `run` waits, so the workers are stopped before exiting.
volatile std::sig_atomic_t g_interrupted = 0;

// Polls the job's status until it ends, drawing progress on `out`. `check` runs at every poll and
// may throw (a local worker that died). Returns the final status.
template <typename Check>
JobStatusInfo wait_for(CoordinatorClient& client, uint64_t job, std::ostream& out, bool terminal,
                       Check check) {
  std::string last_state;
  int64_t last_done = -1;
  Clock::time_point last_line{};
  bool bar_drawn = false;
  // A coordinator that restarts (from its ledger) is waited for this long before giving up.
  constexpr auto kReattach = std::chrono::seconds(120);
  std::optional<Clock::time_point> unreachable_since;
  while (true) {
    JobStatusInfo s;
    try {
      s = query_status(client, job).at(0);
      if (unreachable_since) {
        if (bar_drawn) out << "\n";
        bar_drawn = false;
        out << "reattached to job " << job << " at " << client.endpoint() << "\n" << std::flush;
      }
      unreachable_since.reset();
    } catch (const RemoteError& e) {
      if (e.reply_kind() == schema::ErrorReply::Kind::REFUSED && !unreachable_since) {
        // A restarted coordinator does not know this connection: greet it and ask again.
        client.forget_greeting();
        unreachable_since = Clock::now();
        continue;
      }
      // A coordinator without a ledger forgot the job when it restarted: say so plainly.
      if (e.reply_kind() == schema::ErrorReply::Kind::NOT_FOUND ||
          e.reply_kind() == schema::ErrorReply::Kind::REFUSED)
        fail(ErrorKind::kIo, "job ", job, " is no longer known to the coordinator at ", client.endpoint(),
             " (it restarted without a state_dir, or with another one)");
      throw;
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kIo) throw;
      // No answer: the coordinator is down or restarting. Keep asking for a while.
      if (!unreachable_since) {
        unreachable_since = Clock::now();
        if (bar_drawn) out << "\n";
        bar_drawn = false;
        out << "the coordinator at " << client.endpoint() << " is not answering; waiting up to "
            << kReattach.count() << " s for it to come back\n"
            << std::flush;
      } else if (Clock::now() - *unreachable_since > kReattach) {
        throw;
      }
      client.forget_greeting();
      if (g_interrupted) throw Error(ErrorKind::kIo, "interrupted");
      continue;
    }
    if (terminal) {
      if (s.state != last_state && !s.ended()) {
        if (bar_drawn) out << "\n";
        bar_drawn = false;
      }
      if (!s.ended() || bar_drawn) {
        out << "\r" << format_progress(s, true) << "\x1b[K" << std::flush;
        bar_drawn = true;
      }
    } else if (s.state != last_state ||
               (s.samples_done != last_done && Clock::now() - last_line >= std::chrono::seconds(1))) {
      out << format_progress(s, false) << "\n" << std::flush;
      last_line = Clock::now();
      last_done = s.samples_done;
    }
    last_state = s.state;
    if (s.ended()) {
      if (bar_drawn) out << "\n" << std::flush;
      return s;
    }
    check();
    if (g_interrupted) throw Error(ErrorKind::kIo, "interrupted");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The end of a waited-for job: a summary and the stage times on stdout, or the error. Returns the
// exit status.
int report_end(const JobStatusInfo& s) {
  if (s.state == "done") {
    // samples/s is over the streaming phase; the rest of the elapsed time is loading, planning and
    // building and warming the stages.
    const double streaming = s.samples_per_second > 0 ? s.samples_total / s.samples_per_second : 0;
    std::cout << "job " << s.job << " done: " << s.samples_total << " samples in " << s.micro_batches_total
              << " micro-batches, " << fixed(s.elapsed_seconds, 2) << " s (plan and warm-up "
              << fixed(std::max(0.0, s.elapsed_seconds - streaming), 2) << " s, then "
              << fixed(s.samples_per_second, 1) << " samples/s); outputs in " << s.output << "\n"
              << format_stage_times(s);
    return 0;
  }
  std::cerr << "error: job " << s.job << " " << s.state << (s.error.empty() ? "" : ": ") << s.error << "\n";
  return 1;
}

// --- the local profile (plan --workers N) --------------------------------------------------------

// GEMM GFLOP/s (the reference aten::mm on 128²) and memcpy GB/s of this machine, as a worker
// without OpenCL measures them; a fraction of a second.
std::pair<double, double> measure_this_machine(const OpRegistry& registry) {
  auto fastest = [](auto step, double budget) {
    double best = 1e30;
    auto t0 = Clock::now();
    for (int i = 0; i < 3 || std::chrono::duration<double>(Clock::now() - t0).count() < budget; ++i) {
      auto t = Clock::now();
      step();
      best = std::min(best, std::chrono::duration<double>(Clock::now() - t).count());
      if (i > 50) break;
    }
    return best;
  };
  double gflops = 1;
  if (const OpOverload* mm = registry.find("aten::mm", "")) {
    const int64_t n = 128;
    Tensor a = Tensor::full({n, n}, DType::kFloat32, 1.0), b = Tensor::full({n, n}, DType::kFloat32, 1.0);
    double s = fastest(
        [&] {
          IValueList args{IValue(a), IValue(b)};
          mm->kernel(args);
        },
        0.1);
    gflops = 2.0 * n * n * n / s * 1e-9;
  }
  const size_t bytes = 16u << 20;
  std::vector<uint8_t> x(bytes, 1), y(bytes);
  double s = fastest([&] { std::memcpy(y.data(), x.data(), bytes); }, 0.05);
  return {gflops, bytes / s * 1e-9};
}

}  // namespace

// --- formatting (public for tests) -----------------------------------------------------------------

JobStatusInfo read_job_status(schema::JobStatus::Reader s) {
  JobStatusInfo j;
  j.job = s.getJob();
  j.name = text(s.getName());
  j.state = state_name(s.getState());
  j.error = text(s.getError());
  j.output = text(s.getOutput());
  j.samples_done = s.getSamplesDone();
  j.samples_total = s.getSamplesTotal();
  j.micro_batches_done = s.getMicroBatchesDone();
  j.micro_batches_total = s.getMicroBatchesTotal();
  j.samples_per_second = s.getSamplesPerSecond();
  j.elapsed_seconds = s.getElapsedSeconds();
  for (auto st : s.getStages()) {
    StageStatus o;
    o.stage = st.getStage();
    for (auto w : st.getWorkers()) o.workers.push_back(text(w));
    o.first_op = text(st.getFirstOp());
    o.last_op = text(st.getLastOp());
    o.predicted_seconds = st.getPredictedSeconds();
    o.measured_seconds = st.getMeasuredSeconds();
    j.stages.push_back(o);
  }
  return j;
}

std::string format_status_table(const std::vector<JobStatusInfo>& jobs) {
  if (jobs.empty()) return "no jobs\n";
  std::ostringstream o;
  o << std::left << std::setw(6) << "JOB" << std::setw(20) << "NAME" << std::setw(11) << "STATE"
    << std::setw(16) << "SAMPLES" << std::setw(11) << "SAMPLES/S" << std::setw(11) << "ELAPSED"
    << "ERROR\n";
  for (const JobStatusInfo& j : jobs) {
    std::string samples = std::to_string(j.samples_done) + "/" + std::to_string(j.samples_total);
    o << std::left << std::setw(6) << j.job << std::setw(20) << j.name << std::setw(11) << j.state
      << std::setw(16) << samples << std::setw(11) << fixed(j.samples_per_second, 1) << std::setw(11)
      << (fixed(j.elapsed_seconds, 1) + " s") << j.error << "\n";
  }
  return o.str();
}

std::string format_status_json(const std::vector<JobStatusInfo>& jobs) {
  std::ostringstream o;
  o << "{\"jobs\": [";
  for (size_t i = 0; i < jobs.size(); ++i) {
    const JobStatusInfo& j = jobs[i];
    o << (i ? ", " : "") << "{\"job\": " << j.job << ", \"name\": " << json_string(j.name)
      << ", \"state\": " << json_string(j.state) << ", \"samples_done\": " << j.samples_done
      << ", \"samples_total\": " << j.samples_total << ", \"micro_batches_done\": " << j.micro_batches_done
      << ", \"micro_batches_total\": " << j.micro_batches_total
      << ", \"samples_per_second\": " << json_number(j.samples_per_second)
      << ", \"elapsed_seconds\": " << json_number(j.elapsed_seconds)
      << ", \"error\": " << json_string(j.error) << ", \"output\": " << json_string(j.output)
      << ", \"stages\": [";
    for (size_t k = 0; k < j.stages.size(); ++k) {
      const StageStatus& s = j.stages[k];
      o << (k ? ", " : "") << "{\"stage\": " << s.stage << ", \"workers\": [";
      for (size_t w = 0; w < s.workers.size(); ++w) o << (w ? ", " : "") << json_string(s.workers[w]);
      o << "], \"first_op\": " << json_string(s.first_op) << ", \"last_op\": " << json_string(s.last_op)
        << ", \"predicted_seconds\": " << json_number(s.predicted_seconds)
        << ", \"measured_seconds\": " << json_number(s.measured_seconds) << "}";
    }
    o << "]}";
  }
  o << "]}\n";
  return o.str();
}

std::string format_stage_times(const JobStatusInfo& j) {
  std::ostringstream o;
  o << std::left << std::setw(7) << "stage" << std::setw(24) << "workers" << std::setw(44) << "ops"
    << std::setw(15) << "predicted ms" << std::setw(13) << "measured ms"
    << "measured/predicted\n";
  for (const StageStatus& s : j.stages) {
    std::string workers;
    for (const std::string& w : s.workers) workers += (workers.empty() ? "" : ",") + w;
    std::string ratio = s.predicted_seconds > 0 && s.measured_seconds > 0
                            ? fixed(s.measured_seconds / s.predicted_seconds, 2)
                            : std::string("-");
    o << std::left << std::setw(7) << s.stage << std::setw(24) << workers << std::setw(44)
      << (s.first_op + " .. " + s.last_op) << std::setw(15) << milliseconds(s.predicted_seconds)
      << std::setw(13) << milliseconds(s.measured_seconds) << ratio << "\n";
  }
  return o.str();
}

std::string format_progress(const JobStatusInfo& j, bool terminal) {
  std::ostringstream o;
  double fraction = j.samples_total > 0 ? static_cast<double>(j.samples_done) / j.samples_total : 0;
  std::string eta = j.samples_per_second > 0 && j.samples_total > j.samples_done
                        ? duration((j.samples_total - j.samples_done) / j.samples_per_second)
                        : std::string("?");
  if (terminal) {
    const int width = 30;
    int filled = static_cast<int>(std::lround(fraction * width));
    o << "job " << j.job << " " << std::left << std::setw(9) << j.state << "[" << std::string(filled, '#')
      << std::string(width - filled, '.') << "] " << j.samples_done << "/" << j.samples_total << " samples  "
      << fixed(j.samples_per_second, 1) << " samples/s  ETA " << (j.ended() ? std::string("0 s") : eta);
    return o.str();
  }
  o << "job " << j.job << ": " << j.state;
  if (j.state == "running" || j.ended())
    o << ", " << j.samples_done << "/" << j.samples_total << " samples (" << fixed(100 * fraction, 1)
      << "%), " << fixed(j.samples_per_second, 1) << " samples/s, ETA "
      << (j.ended() ? std::string("0 s") : eta);
  return o.str();
}

std::string format_workers_table(schema::WorkersReply::Reader reply) {
  auto workers = reply.getWorkers();
  if (workers.size() == 0) return "no workers registered\n";
  std::ostringstream o;
  o << std::left << std::setw(4) << "ID" << std::setw(20) << "NAME" << std::setw(28) << "DATA ENDPOINT"
    << std::setw(12) << "HEARTBEAT" << std::setw(9) << "BUSY" << std::setw(10) << "RSS" << std::setw(22)
    << "STAGES"
    << "DEVICES\n";
  for (auto w : workers) {
    std::string stages, devices;
    for (auto s : w.getStages()) stages += (stages.empty() ? "" : "; ") + text(s);
    for (auto d : w.getDevices())
      devices += (devices.empty() ? "" : "; ") + std::to_string(d.getIndex()) + ":" + text(d.getName()) +
                 " (" + text(d.getBackend()) + ", " + fixed(d.getGemmGflops(), 1) + " GFLOP/s, " +
                 fixed(d.getCopyGbps(), 1) + " GB/s)";
    o << std::left << std::setw(4) << w.getWorkerId() << std::setw(20) << text(w.getName()) << std::setw(28)
      << text(w.getDataEndpoint()) << std::setw(12) << (std::to_string(w.getLastHeartbeatMs()) + " ms ago")
      << std::setw(9) << (fixed(w.getBusySeconds(), 1) + " s") << std::setw(10)
      << (fixed(w.getRssBytes() / 1048576.0, 1) + " MiB") << std::setw(22) << (stages.empty() ? "-" : stages)
      << devices << "\n";
  }
  return o.str();
}

std::string format_workers_json(schema::WorkersReply::Reader reply) {
  std::ostringstream o;
  o << "{\"workers\": [";
  bool first = true;
  for (auto w : reply.getWorkers()) {
    o << (first ? "" : ", ") << "{\"id\": " << w.getWorkerId()
      << ", \"name\": " << json_string(text(w.getName())) << ", \"host\": " << json_string(text(w.getHost()))
      << ", \"data_endpoint\": " << json_string(text(w.getDataEndpoint()))
      << ", \"key\": " << json_string(text(w.getKey()))
      << ", \"last_heartbeat_ms\": " << w.getLastHeartbeatMs()
      << ", \"busy_seconds\": " << json_number(w.getBusySeconds()) << ", \"rss_bytes\": " << w.getRssBytes()
      << ", \"stages\": [";
    bool first_stage = true;
    for (auto st : w.getStages()) {
      o << (first_stage ? "" : ", ") << json_string(text(st));
      first_stage = false;
    }
    o << "], \"devices\": [";
    bool first_device = true;
    for (auto d : w.getDevices()) {
      o << (first_device ? "" : ", ") << "{\"index\": " << d.getIndex()
        << ", \"name\": " << json_string(text(d.getName()))
        << ", \"backend\": " << json_string(text(d.getBackend()))
        << ", \"memory_bytes\": " << d.getMemoryBytes()
        << ", \"gemm_gflops\": " << json_number(d.getGemmGflops())
        << ", \"copy_gbps\": " << json_number(d.getCopyGbps())
        << ", \"processor\": " << json_string(text(d.getProcessor())) << "}";
      first_device = false;
    }
    o << "]}";
    first = false;
  }
  o << "]}\n";
  return o.str();
}

// --- commands --------------------------------------------------------------------------------------

int cmd_serve(const std::vector<std::string>& args) {
  Args a = parse("serve", args, {"--config"}, 0);
  ClusterConfig config = a.config.empty() ? ClusterConfig{} : load_cluster_config(a.config);
  return serve(config, std::cerr);
}

int cmd_keygen(const std::vector<std::string>& args, const std::string& default_role) {
  Args a = parse("keygen", args, {"--out", "--name", "--role"}, 0);
  if (a.out.empty())
    throw UsageError("keygen: --out DIR is required (where NAME.key and NAME.key_secret go)");
  std::string role_text = a.role.empty() ? default_role : a.role;
  std::optional<auth::Role> role = auth::parse_role(role_text);
  if (!role || *role == auth::Role::kCoordinator)
    throw UsageError("keygen: --role must be worker, client or admin, not '" + role_text + "'");
  std::string name = a.name.empty() ? (*role == auth::Role::kWorker ? "worker" : "client") : a.name;
  std::string key = auth::keygen(a.out, name, *role);
  std::cout << "wrote " << auth::public_file(a.out, name) << " and " << auth::secret_file(a.out, name) << " ("
            << role_text << ", public key " << key << ")\n"
            << "admit it: copy " << auth::public_file(a.out, name)
            << " into the coordinator's keys_dir/authorized/ (docs/security.md)\n";
  return 0;
}

int cmd_submit(const std::vector<std::string>& args) {
  Args a = parse("submit", args, with_client({"--wait", "--backend"}), 1);
  if (a.positional.empty()) throw UsageError("submit: no job file given");
  JobSpec spec = load_job_spec(a.positional[0]);
  CoordinatorClient client(a.coordinator, client_keys(a));
  uint64_t job = submit(client, spec, a.backend);
  if (!a.wait) {
    std::cout << "submitted job " << job << "\n";
    return 0;
  }
  bool terminal = isatty(STDOUT_FILENO);
  if (!terminal) std::cout << "submitted job " << job << "\n" << std::flush;
  JobStatusInfo s = wait_for(client, job, std::cout, terminal, [] {});
  return report_end(s);
}

int cmd_status(const std::vector<std::string>& args) {
  Args a = parse("status", args, with_client({"--json"}), 1);
  uint64_t job = a.positional.empty() ? 0 : parse_job_id("status", a.positional[0]);
  CoordinatorClient client(a.coordinator, client_keys(a));
  std::vector<JobStatusInfo> jobs = query_status(client, job);
  if (a.json) {
    std::cout << format_status_json(jobs);
  } else {
    std::cout << format_status_table(jobs);
    if (job && !jobs.empty() && !jobs[0].stages.empty()) std::cout << format_stage_times(jobs[0]);
  }
  return 0;
}

int cmd_cancel(const std::vector<std::string>& args) {
  Args a = parse("cancel", args, with_client({}), 1);
  if (a.positional.empty()) throw UsageError("cancel: no job given");
  uint64_t job = parse_job_id("cancel", a.positional[0]);
  CoordinatorClient client(a.coordinator, client_keys(a));
  wire::OutMessage m;
  m.envelope().getBody().initCancel().setJob(job);
  wire::InMessage reply = client.call(std::move(m));
  CONVOY_CHECK_KIND(kIo, reply.envelope().getBody().which() == schema::Envelope::Body::CANCELLED,
                    "the coordinator answered a cancel with something else");
  std::cout << "cancelled job " << job << "\n";
  return 0;
}

int cmd_workers(const std::vector<std::string>& args) {
  Args a = parse("workers", args, with_client({"--json"}), 0);
  CoordinatorClient client(a.coordinator, client_keys(a));
  wire::OutMessage m;
  m.envelope().getBody().initWorkersRequest();
  wire::InMessage reply = client.call(std::move(m));
  auto body = reply.envelope().getBody();
  CONVOY_CHECK_KIND(kIo, body.which() == schema::Envelope::Body::WORKERS_REPLY,
                    "the coordinator answered a workers request with something else");
  std::cout << (a.json ? format_workers_json(body.getWorkersReply())
                       : format_workers_table(body.getWorkersReply()));
  return 0;
}

int cmd_plan(const std::vector<std::string>& args) {
  Args a = parse("plan", args, with_client({"--workers", "--backend"}), 1);
  if (a.positional.empty()) throw UsageError("plan: no job file given");
  JobSpec spec = load_job_spec(a.positional[0]);
  if (a.workers < 0) {
    CoordinatorClient client(a.coordinator, client_keys(a),
                             std::chrono::seconds(120));  // big models take a while to load
    wire::OutMessage m;
    fill_submit(m.envelope().getBody().initPlanRequest().initJob(), spec, a.backend);
    wire::InMessage reply = client.call(std::move(m));
    auto body = reply.envelope().getBody();
    CONVOY_CHECK_KIND(kIo, body.which() == schema::Envelope::Body::PLAN_REPLY,
                      "the coordinator answered a plan request with something else");
    std::cout << text(body.getPlanReply().getText());
    return 0;
  }
  OpRegistry registry = make_default_registry();
  LoadOptions options;
  options.num_inputs = static_cast<int>(spec.inputs.size());
  Model model = load_model(spec.model, registry, options);
  JobInputs in = open_job_inputs(spec.job_file, spec.inputs, model.input_names, spec.batch_size);
  std::vector<InputShape>& shapes = in.shapes;
  int64_t samples = in.samples;
  auto [gflops, gbps] = measure_this_machine(registry);
  std::string backend = a.backend.empty() ? "opencl" : a.backend;
  std::vector<WorkerDevice> devices =
      simulated_local_workers(static_cast<uint32_t>(a.workers), backend, gflops, gbps);
  PlanSettings settings;
  settings.micro_batches = (samples + spec.batch_size - 1) / spec.batch_size;
  std::shared_ptr<const Graph> graph(std::move(model.graph));
  JobPlan plan = plan_job(graph, devices, shapes, settings);
  std::cout << a.workers << " simulated local worker(s) sharing this machine (" << fixed(gflops, 1)
            << " GFLOP/s, " << fixed(gbps, 1) << " GB/s)\n"
            << plan.text;
  return 0;
}

int run_distributed(const std::string& job_path, uint32_t n, const std::string& backend,
                    const std::string& device) {
  JobSpec spec = load_job_spec(job_path);
  // Fresh keys for this one run, in a private folder that goes away with it: the embedded cluster
  // admits only its own workers and this process.
  char dir_template[] = "/tmp/convoy-run-XXXXXX";
  CONVOY_CHECK_KIND(kIo, mkdtemp(dir_template), "cannot create a temporary folder: ", std::strerror(errno));
  struct RemoveOnExit {
    std::string dir;
    ~RemoveOnExit() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } temp{dir_template};
  ClusterConfig config;
  config.listen = "tcp://127.0.0.1:*";
  config.http_listen = "";  // no /metrics: parallel runs must not collide on a port
  config.min_workers = n;   // every local worker takes part
  config.backend = backend;
  config.keys_dir = temp.dir + "/keys";
  config.allowed_roots = {"/"};  // this user's own job, on this machine: the paths they can open
  EmbeddedCoordinator coordinator(config, std::cerr);
  g_interrupted = 0;
  auto on_signal = [](int) { g_interrupted = 1; };
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int status = 1;
  {
    LocalWorkers workers(n, coordinator.endpoint(), backend, device, temp.dir, config.keys_dir);
    try {
      CoordinatorClient client(coordinator.endpoint(), load_client_keys(config.keys_dir));
      uint64_t job = submit(client, spec, backend);
      JobStatusInfo s = wait_for(client, job, std::cerr, isatty(STDERR_FILENO), [&] { workers.check(); });
      status = report_end(s);
    } catch (...) {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      workers.stop(std::chrono::seconds(5));
      coordinator.stop();
      throw;
    }
    workers.stop(std::chrono::seconds(5));
  }
  coordinator.stop();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return status;
}

}  // namespace convoy
