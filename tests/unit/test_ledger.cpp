// The coordinator's durable pieces: the SQLite job ledger, its state_dir lock and config key,
// admission that resumes around micro-batches already written, and partial outputs reopened by a
// later process.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "coordinator/cluster_config.h"
#include "coordinator/job_progress.h"
#include "coordinator/ledger.h"
#include "runtime/error.h"
#include "runtime/npy.h"

using namespace convoy;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("convoy-test-ledger-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

LedgerJob sample_job(uint64_t id) {
  LedgerJob j;
  j.id = id;
  j.request.name = "job.yaml";
  j.request.job_file = "/data/job.yaml";
  j.request.model_path = "/data/model.pt";
  j.request.output = "/data/out";
  j.request.backend = "opencl";
  j.request.input_paths = {"/data/x.npy", "/data/with space.npy"};
  j.request.batch_size = 8;
  j.request.max_workers = 3;
  j.submitted_unix = 1.7e9;
  return j;
}

}  // namespace

TEST_CASE("ledger: jobs, written micro-batches and ends survive reopening", "[ledger]") {
  fs::path dir = temp_dir("roundtrip");
  {
    Ledger l(dir.string());
    CHECK(l.next_job_id() == 1);
    CHECK(l.load().empty());
    l.add(sample_job(1));
    l.add(sample_job(2));
    CHECK(l.next_job_id() == 3);
    l.running(1, 0, 100, 13);
    l.written(1, {0, 1, 5}, 3, 24);
    l.written(1, {5, 7}, 4, 32);  // 5 again: recorded once
    l.running(2, 0, 8, 1);
    l.written(2, {0}, 1, 8);
    l.ended(2, "done", "", 1.7e9 + 5, 4.5, 1, 8);
  }
  CHECK(fs::exists(dir / "ledger.sqlite"));
  Ledger l(dir.string());
  std::vector<LedgerJob> jobs = l.load();
  REQUIRE(jobs.size() == 2);
  const LedgerJob& a = jobs[0];
  CHECK(a.id == 1);
  CHECK(a.state == "running");
  CHECK(a.request.input_paths == std::vector<std::string>{"/data/x.npy", "/data/with space.npy"});
  CHECK(a.request.model_path == "/data/model.pt");
  CHECK(a.request.batch_size == 8);
  CHECK(a.request.max_workers == 3);
  CHECK(a.samples == 100);
  CHECK(a.micro_batches_total == 13);
  CHECK(a.micro_batches_done == 4);
  CHECK(a.samples_done == 32);
  CHECK(a.written == std::vector<int64_t>{0, 1, 5, 7});
  CHECK_FALSE(a.ended());
  const LedgerJob& b = jobs[1];
  CHECK(b.state == "done");
  CHECK(b.ended());
  CHECK(b.written.empty());  // an ended job's written-set is dropped
  CHECK(b.elapsed_seconds == 4.5);
  CHECK(l.next_job_id() == 3);
  fs::remove_all(dir);
}

TEST_CASE("ledger: one coordinator per state_dir", "[ledger]") {
  fs::path dir = temp_dir("lock");
  {
    Ledger first(dir.string());
    std::string e = error_of([&] { Ledger second(dir.string()); });
    CHECK_THAT(e, Contains("state_dir " + dir.string() + " is in use by another coordinator"));
    CHECK_THAT(e, Contains("pid " + std::to_string(getpid())));
  }
  Ledger again(dir.string());  // released with the first
  CHECK(again.next_job_id() == 1);
  fs::remove_all(dir);
}

TEST_CASE("ledger: a state_dir that cannot be made is a clear error", "[ledger]") {
  fs::path dir = temp_dir("file");
  std::ofstream(dir / "not-a-dir") << "x";
  CHECK_THAT(error_of([&] { Ledger l((dir / "not-a-dir" / "state").string()); }),
             Contains("state_dir") && Contains("cannot create"));
  fs::remove_all(dir);
}

TEST_CASE("cluster config: state_dir is absolute, ~/ or relative to the file", "[ledger]") {
  CHECK(parse_cluster_config("max_in_flight: 2\n", "c.yaml").state_dir.empty());
  CHECK(parse_cluster_config("state_dir: /var/lib/convoy\n", "c.yaml").state_dir == "/var/lib/convoy");
  CHECK(parse_cluster_config("state_dir: ''\n", "c.yaml").state_dir.empty());
  const char* home = std::getenv("HOME");
  if (home) CHECK(parse_cluster_config("state_dir: ~/st\n", "c.yaml").state_dir == std::string(home) + "/st");
  CHECK(parse_cluster_config("state_dir: st\n", "/etc/convoy/cluster.yaml").state_dir == "/etc/convoy/st");
  CHECK_THAT(error_of([] { parse_cluster_config("max_in_flight: 2\nstate_dir: [a]\n", "c.yaml"); }),
             Contains("c.yaml:2: 'state_dir' must be a path"));
#ifdef CONVOY_SOURCE_DIR
  // As shipped, jobs are durable with no setup: the ledger lives under the coordinator's home.
  if (home)
    CHECK(load_cluster_config(std::string(CONVOY_SOURCE_DIR) + "/configs/cluster.yaml").state_dir ==
          std::string(home) + "/.local/state/convoy");
#endif
}

TEST_CASE("admission: micro-batches written before a restart are done and never admitted", "[ledger]") {
  Admission a(6, 2, {0, 2, 3, 9});  // 9 is out of range: ignored
  CHECK(a.done() == 3);
  CHECK(a.admit() == 1);
  CHECK(a.admit() == 4);
  CHECK_FALSE(a.can_admit());
  CHECK_FALSE(a.complete(2));  // written before: a late copy is refused
  CHECK(a.complete(1));
  CHECK(a.admit() == 5);
  CHECK(a.complete(4));
  CHECK(a.complete(5));
  CHECK_FALSE(a.can_admit());
  CHECK(a.finished());
  Admission all(3, 4, {0, 1, 2});
  CHECK(all.finished());
  CHECK_FALSE(all.can_admit());
}

TEST_CASE("outputs: partial files are reopened by a later assembler with their rows", "[ledger]") {
  fs::path dir = temp_dir("partial");
  auto rows = [](int64_t n, float v) {
    Tensor t = Tensor::empty({n, 3}, DType::kFloat32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v + static_cast<float>(i);
    return t;
  };
  {
    OutputAssembler first(dir.string(), 5, 2, "job 7", "job7");
    first.write(0, {rows(2, 10)});
    first.write(2, {rows(1, 50)});
    first.sync();
    first.keep();  // the coordinator stops: the partial file stays
  }
  CHECK(fs::exists(OutputAssembler::partial_path(dir.string(), 0, "job7")));
  CHECK_FALSE(fs::exists(dir / "output_0.npy"));
  {
    OutputAssembler second(dir.string(), 5, 2, "job 7", "job7", /*resume=*/true);
    second.write(1, {rows(2, 30)});
    second.commit();
  }
  Tensor out = read_npy((dir / "output_0.npy").string());
  REQUIRE(out.sizes() == Shape{5, 3});
  CHECK(out.data<float>()[0] == 10);   // written by the first
  CHECK(out.data<float>()[6] == 30);   // by the second
  CHECK(out.data<float>()[12] == 50);  // by the first
  CHECK_FALSE(fs::exists(OutputAssembler::partial_path(dir.string(), 0, "job7")));

  // A partial file of another shape is refused, and an uncommitted assembler cleans up after itself.
  {
    OutputAssembler a(dir.string(), 5, 2, "job 8", "job8");
    a.write(0, {rows(2, 1)});
    a.keep();
  }
  {
    OutputAssembler b(dir.string(), 7, 2, "job 8", "job8", true);
    CHECK_THAT(error_of([&] { b.write(0, {rows(2, 1)}); }),
               Contains("is not the partial float32[7, 3] output"));
  }
  CHECK(OutputAssembler::remove_partials(dir.string(), "job8") == 1);
  CHECK(OutputAssembler::remove_partials(dir.string(), "job8") == 0);
  fs::remove_all(dir);
}
