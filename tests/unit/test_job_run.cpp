// The job state machine in one process (coordinator/job_run.h): a fake clock, an outbox that
// records what the job run sends, fake workers that answer, and injected faults — a worker lost
// while its stage builds and while micro-batches are in flight, a stalled pipeline, an unreachable
// data endpoint, and a coordinator that crashes after every result and is restarted from its ledger.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <deque>
#include <filesystem>
#include <functional>
#include <sstream>

#include "coordinator/job_run.h"
#include "coordinator/ledger.h"
#include "runtime/error.h"
#include "runtime/npy.h"
#include "runtime/ops/registry.h"

using namespace convoy;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;
using Body = schema::Envelope::Body;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("convoy-test-job-run-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

fs::path seed_dir() {
#ifdef CONVOY_SOURCE_DIR
  return fs::path(CONVOY_SOURCE_DIR) / "examples/seed";
#else
  return fs::path("examples/seed");
#endif
}

struct FakeClock : JobClock {
  SteadyClock::time_point t = SteadyClock::time_point{} + std::chrono::hours(1);
  SteadyClock::time_point now() const override { return t; }
  void advance(double s) {
    t += std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  }
};

// Records what a job run sends; micro-batches and control messages come back as InMessages.
struct FakeOutbox : JobOutbox {
  struct Sent {
    uint32_t worker;
    std::shared_ptr<wire::InMessage> msg;
  };
  std::deque<Sent> control, data;
  std::deque<std::function<void()>> deferred;
  std::vector<uint64_t> ended;
  std::set<std::string> unanswered;  // data endpoints that never answer hello
  size_t micro_batches_sent = 0;
  std::map<uint32_t, size_t> per_worker;

  void to_worker(const Worker& w, wire::OutMessage& m) override {
    control.push_back(
        {w.id, std::make_shared<wire::InMessage>(wire::InMessage::from_frames(m.take_frames()))});
  }
  void to_data(const Worker& w, wire::OutMessage& m) override {
    ++micro_batches_sent;
    ++per_worker[w.id];
    data.push_back({w.id, std::make_shared<wire::InMessage>(wire::InMessage::from_frames(m.take_frames()))});
  }
  void defer(std::function<void()> f) override { deferred.push_back(std::move(f)); }
  void job_ended(uint64_t job) override { ended.push_back(job); }
  bool data_answered(const Worker& w) override { return !unanswered.count(w.data_endpoint); }
  std::vector<const JobRun*> runs;  // the jobs sharing the cluster, for held_by_others
  std::set<uint32_t> held_by_others(uint64_t job) const override {
    std::set<uint32_t> held;
    for (const JobRun* r : runs)
      if (r->id() != job && r->active()) held.insert(r->held_workers().begin(), r->held_workers().end());
    return held;
  }
  void run_deferred() {
    while (!deferred.empty()) {
      auto f = std::move(deferred.front());
      deferred.pop_front();
      f();
    }
  }
};

// A coordinator's surroundings for one job run: registry, outbox, clock, optional ledger.
struct World {
  ClusterConfig config;
  OpRegistry registry = make_default_registry();
  WorkerRegistry workers;
  FakeOutbox outbox;
  FakeClock clock;
  std::unique_ptr<Ledger> ledger;
  std::ostringstream log;
  CoordinatorCounters counters;
  uint64_t next_request = 1;
  JobEnv env{config, registry, workers, outbox, clock, nullptr, log, counters, next_request};

  World() {
    config.backend = "reference";
    config.max_in_flight = 2;
    config.progress_timeout_s = 5;
  }
  uint32_t add_worker(const std::string& name) {
    Worker w;
    w.name = name;
    w.identity = name;
    w.data_endpoint = "tcp://127.0.0.1:" + std::to_string(6000 + workers.size());
    WorkerDevice d;
    d.name = "cpu";
    d.backend = "reference";
    d.gemm_gflops = 10;
    d.copy_gbps = 10;
    d.memory_bytes = 1ull << 30;
    d.processor = name + ":cpu";
    w.devices.push_back(d);
    return workers.add(std::move(w), clock.now());
  }
  void open_ledger(const fs::path& dir) {
    ledger.reset();
    ledger = std::make_unique<Ledger>(dir.string());
    env.ledger = ledger.get();
  }

  // Answers every AssignStage of `run` with stageReady (ReleaseStage is read and dropped; other
  // jobs' assignments stay queued).
  void answer_assignments(JobRun& run) {
    std::deque<FakeOutbox::Sent> others;
    while (!outbox.control.empty()) {
      FakeOutbox::Sent s = outbox.control.front();
      outbox.control.pop_front();
      auto env_in = s.msg->envelope();
      if (env_in.getBody().which() != Body::ASSIGN_STAGE) continue;
      auto a = env_in.getBody().getAssignStage();
      if (a.getJob() != run.id()) {
        others.push_back(s);
        continue;
      }
      wire::OutMessage m;
      auto r = m.envelope().getBody().initStageReady();
      r.setJob(a.getJob());
      r.setPipeline(a.getPipeline());
      r.setStage(a.getStage());
      r.setReplica(a.getReplica());
      wire::InMessage in = wire::InMessage::from_frames(m.take_frames());
      Worker* w = workers.find(s.worker);
      REQUIRE(w);
      run.on_stage_ready(*w, env_in.getRequestId(), in.envelope().getBody().getStageReady());
    }
    outbox.control = std::move(others);
  }
  // Answers the oldest in-flight micro-batch as the last stage would: the "model" returns x.
  void answer_one(JobRun& run) {
    REQUIRE_FALSE(outbox.data.empty());
    FakeOutbox::Sent s = outbox.data.front();
    outbox.data.pop_front();
    auto b = s.msg->envelope().getBody().getMicroBatch();
    Tensor x = s.msg->tensor(0, b.getTensors()[0], "x");
    wire::OutMessage m;
    auto r = m.envelope().getBody().initResult();
    r.setJob(b.getJob());
    r.setPipeline(b.getPipeline());
    r.setSeq(b.getSeq());
    m.add_tensor(x.clone(), r.initTensors(1)[0]);
    r.initStageSeconds(1).set(0, 0.001);
    wire::InMessage in = wire::InMessage::from_frames(m.take_frames());
    const Worker* w = workers.find(s.worker);
    run.on_result(s.worker, w ? w->name : "gone", in, in.envelope().getBody().getResult());
  }
  void lose(JobRun& run, uint32_t id, const std::string& why) {
    std::optional<Worker> w = workers.remove(id);
    REQUIRE(w);
    run.on_worker_lost(id, w->name, why, true);
    outbox.run_deferred();
  }
};

JobRequest seed_request(const fs::path& out) {
  JobRequest r;
  r.name = "seed";
  r.job_file = "seed.yaml";
  r.model_path = (seed_dir() / "jit.pt").string();
  r.input_paths = {(seed_dir() / "x.npy").string(), (seed_dir() / "h.npy").string()};
  r.output = out.string();
  r.backend = "reference";
  r.batch_size = 1;
  return r;
}

// The output a finished seed job must hold: x itself (the fake model returns its first input).
void expect_output_is_x(const fs::path& out) {
  Tensor x = read_npy((seed_dir() / "x.npy").string());
  Tensor got = read_npy((out / "output_0.npy").string());
  REQUIRE(got.sizes() == x.sizes());
  CHECK(std::memcmp(got.raw_data(), x.raw_data(), x.nbytes()) == 0);
  for (const auto& e : fs::directory_iterator(out)) CHECK(e.path().extension() == ".npy");  // nothing partial
}

}  // namespace

TEST_CASE("job run: streams within its credits and writes every micro-batch once", "[job_run]") {
  World world;
  world.add_worker("w1");
  fs::path out = temp_dir("stream");
  JobRun run(world.env, 1, seed_request(out));
  run.start();
  REQUIRE(run.state() == JobState::PLANNING);
  world.answer_assignments(run);
  REQUIRE(run.state() == JobState::RUNNING);
  int64_t total = read_npy((seed_dir() / "x.npy").string()).size(0);
  while (run.state() == JobState::RUNNING) {
    CHECK(world.outbox.data.size() <= world.config.max_in_flight);
    world.answer_one(run);
  }
  CHECK(run.state() == JobState::DONE);
  CHECK(world.outbox.micro_batches_sent == static_cast<size_t>(total));
  CHECK(world.outbox.ended == std::vector<uint64_t>{1});
  expect_output_is_x(out);
  fs::remove_all(out);
}

TEST_CASE("job run: a worker lost while building and while running is replaced, nothing is lost",
          "[job_run]") {
  World world;
  uint32_t w1 = world.add_worker("w1");
  fs::path out = temp_dir("loss");
  JobRun run(world.env, 1, seed_request(out));
  run.start();
  // Lost while its stage builds: the job re-plans onto the next worker to register.
  world.outbox.control.clear();
  world.lose(run, w1, "missed 3 heartbeats");
  CHECK(run.state() == JobState::PLANNING);
  CHECK(world.outbox.control.empty());  // nobody left: it waits
  uint32_t w2 = world.add_worker("w2");
  run.on_worker_registered();
  world.answer_assignments(run);
  REQUIRE(run.state() == JobState::RUNNING);
  world.answer_one(run);
  // Lost with micro-batches in flight: they are replayed on a new pipeline, once.
  size_t in_flight = world.outbox.data.size();
  REQUIRE(in_flight > 0);
  uint32_t w3 = world.add_worker("w3");
  world.outbox.data.clear();  // what w2 held is gone with it
  world.lose(run, w2, "missed 3 heartbeats");
  CHECK(world.counters.replays == in_flight);
  world.answer_assignments(run);
  REQUIRE(run.state() == JobState::RUNNING);
  while (run.state() == JobState::RUNNING) world.answer_one(run);
  CHECK(run.state() == JobState::DONE);
  CHECK(world.workers.find(w3));
  expect_output_is_x(out);
  fs::remove_all(out);
}

TEST_CASE("job run: a slow replica gets less work and the tail runs backup copies", "[job_run]") {
  World world;
  uint32_t fast = world.add_worker("fast");
  uint32_t slow = world.add_worker("slow");
  fs::path out = temp_dir("straggler");
  JobRun run(world.env, 1, seed_request(out));
  run.start();
  world.answer_assignments(run);
  REQUIRE(run.state() == JobState::RUNNING);
  // The slow replica answers one micro-batch for every four the fast one does, and reports 4x the
  // compute time; what it holds at the end is taken over by backups.
  auto answer_from = [&](uint32_t who, double seconds) {
    for (auto it = world.outbox.data.begin(); it != world.outbox.data.end(); ++it) {
      if (it->worker != who) continue;
      FakeOutbox::Sent s = *it;
      world.outbox.data.erase(it);
      auto b = s.msg->envelope().getBody().getMicroBatch();
      wire::OutMessage m;
      auto r = m.envelope().getBody().initResult();
      r.setJob(b.getJob());
      r.setPipeline(b.getPipeline());
      r.setSeq(b.getSeq());
      m.add_tensor(s.msg->tensor(0, b.getTensors()[0], "x").clone(), r.initTensors(1)[0]);
      r.initStageSeconds(1).set(0, seconds);
      wire::InMessage in = wire::InMessage::from_frames(m.take_frames());
      run.on_result(who, world.workers.find(who)->name, in, in.envelope().getBody().getResult());
      return true;
    }
    return false;
  };
  for (int round = 0; run.state() == JobState::RUNNING && round < 1000; ++round) {
    answer_from(fast, 0.001);
    if (round % 4 == 3) answer_from(slow, 0.004);
    if (world.outbox.data.empty()) break;
  }
  CHECK(run.state() == JobState::DONE);
  INFO("fast got " << world.outbox.per_worker[fast] << ", slow " << world.outbox.per_worker[slow]);
  CHECK(world.outbox.per_worker[fast] > 2 * world.outbox.per_worker[slow]);
  CHECK(world.counters.backup_copies > 0);  // what the slow one held at the end ran on the fast one too
  expect_output_is_x(out);
  fs::remove_all(out);
}

TEST_CASE("job run: two jobs with a share each run at once on separate workers", "[job_run]") {
  World world;
  world.add_worker("w1");
  world.add_worker("w2");
  world.add_worker("w3");
  fs::path out_a = temp_dir("share-a"), out_b = temp_dir("share-b");
  JobRequest ra = seed_request(out_a), rb = seed_request(out_b);
  ra.max_workers = 1;
  rb.max_workers = 2;
  JobRun a(world.env, 1, ra), b(world.env, 2, rb);
  world.outbox.runs = {&a, &b};
  a.start();
  b.start();
  CHECK(a.held_workers().size() == 1);
  CHECK(b.held_workers().size() <= 2);
  for (uint32_t w : a.held_workers()) CHECK_FALSE(b.held_workers().count(w));
  // Assignments and micro-batches go to each job's own workers; both finish.
  world.answer_assignments(a);
  world.answer_assignments(b);
  REQUIRE(a.state() == JobState::RUNNING);
  REQUIRE(b.state() == JobState::RUNNING);
  while (!world.outbox.data.empty()) {
    FakeOutbox::Sent s = world.outbox.data.front();
    uint64_t job = s.msg->envelope().getBody().getMicroBatch().getJob();
    JobRun& run = job == 1 ? a : b;
    if (run.active()) CHECK(run.held_workers().count(s.worker));  // a finished job's late backups are dropped
    world.answer_one(job == 1 ? a : b);
  }
  CHECK(a.state() == JobState::DONE);
  CHECK(b.state() == JobState::DONE);
  expect_output_is_x(out_a);
  expect_output_is_x(out_b);
  fs::remove_all(out_a);
  fs::remove_all(out_b);
}

TEST_CASE("job run: a pipeline without progress is re-planned, then failed naming it", "[job_run]") {
  World world;
  world.add_worker("w1");
  fs::path out = temp_dir("stall");
  JobRun run(world.env, 1, seed_request(out));
  run.start();
  world.answer_assignments(run);
  world.answer_one(run);
  world.clock.advance(4);
  run.tick();
  CHECK(run.state() == JobState::RUNNING);  // within progress_timeout_s
  world.clock.advance(2);
  run.tick();
  CHECK(run.state() == JobState::PLANNING);  // the first stall re-plans
  CHECK_THAT(world.log.str(), Contains("no result for 6 s (progress_timeout_s 5)") &&
                                  Contains("stage 0 on w1 (tcp://127.0.0.1:6000)"));
  world.outbox.run_deferred();
  world.outbox.data.clear();
  world.answer_assignments(run);
  REQUIRE(run.state() == JobState::RUNNING);
  world.clock.advance(6);
  run.tick();
  CHECK(run.state() == JobState::FAILED);
  schema::JobStatus::Builder st = [&] {
    static capnp::MallocMessageBuilder b;
    return b.initRoot<schema::JobStatus>();
  }();
  run.fill_status(st);
  CHECK_THAT(std::string(st.getError().cStr()),
             Contains("stalled 2 times") && Contains("tcp://127.0.0.1:6000"));
  CHECK_FALSE(fs::exists(out / "output_0.npy"));
  fs::remove_all(out);
}

TEST_CASE("job run: a stage-0 endpoint that never answers hello is planned around", "[job_run]") {
  World world;
  uint32_t w1 = world.add_worker("w1");
  fs::path out = temp_dir("unreachable");
  world.outbox.unanswered.insert(world.workers.find(w1)->data_endpoint);
  JobRun run(world.env, 1, seed_request(out));
  run.start();
  world.answer_assignments(run);
  CHECK(run.state() == JobState::PLANNING);  // ready, but the coordinator's link has no answer
  world.clock.advance(11);
  run.tick();
  world.outbox.run_deferred();
  // Nobody else: it fails with the endpoint's name.
  CHECK(run.state() == JobState::FAILED);
  CHECK_THAT(world.log.str(), Contains("cannot reach worker w1's data endpoint tcp://127.0.0.1:6000"));

  // With a second worker it runs there instead.
  World again;
  uint32_t bad = again.add_worker("w1");
  again.add_worker("w2");
  again.config.max_replicas = 1;
  again.outbox.unanswered.insert(again.workers.find(bad)->data_endpoint);
  fs::path out2 = temp_dir("unreachable2");
  JobRun run2(again.env, 1, seed_request(out2));
  run2.start();
  for (int i = 0; i < 3 && run2.state() == JobState::PLANNING; ++i) {
    again.answer_assignments(run2);
    if (run2.state() != JobState::PLANNING) break;
    again.clock.advance(11);
    run2.tick();
    again.outbox.run_deferred();
  }
  INFO(again.log.str());
  REQUIRE(run2.state() == JobState::RUNNING);
  while (run2.state() == JobState::RUNNING) again.answer_one(run2);
  CHECK(run2.state() == JobState::DONE);
  expect_output_is_x(out2);
  fs::remove_all(out);
  fs::remove_all(out2);
}

TEST_CASE("job run: a coordinator that crashes after any result resumes from the ledger", "[job_run]") {
  int64_t total = read_npy((seed_dir() / "x.npy").string()).size(0);
  for (int64_t crash_after = 0; crash_after <= total; ++crash_after) {
    for (bool committed : {false, true}) {  // crashed before or after the ledger's group commit
      DYNAMIC_SECTION("crash after " << crash_after << " results, " << (committed ? "after" : "before")
                                     << " the commit") {
        fs::path state = temp_dir("ledger-state"), out = temp_dir("ledger-out");
        int64_t written_before = 0;
        {
          World world;
          world.open_ledger(state);
          world.add_worker("w1");
          // A crash runs no destructor: the job run is abandoned as it stands.
          auto* run = new JobRun(world.env, 1, seed_request(out));
          run->start();
          world.answer_assignments(*run);
          for (int64_t i = 0; i < crash_after && run->state() == JobState::RUNNING; ++i) {
            if (committed) world.clock.advance(0.2);  // past the group-commit interval
            world.answer_one(*run);
          }
          if (committed) {
            world.clock.advance(0.2);
            run->tick();
          }
          std::vector<LedgerJob> jobs = world.ledger->load();
          REQUIRE(jobs.size() == 1);
          written_before = jobs[0].ended() ? total : static_cast<int64_t>(jobs[0].written.size());
          if (committed && crash_after < total) CHECK(written_before == crash_after);
          world.ledger.reset();  // the process is gone: its lock goes with it
          (void)run;             // leaked on purpose
        }
        World world;
        world.open_ledger(state);
        world.add_worker("w2");
        std::vector<LedgerJob> jobs = world.ledger->load();
        REQUIRE(jobs.size() == 1);
        CHECK(world.ledger->next_job_id() == 2);
        JobRun run(world.env, jobs[0]);
        if (!run.ended()) {
          run.start();
          world.answer_assignments(run);
          while (run.state() == JobState::RUNNING) world.answer_one(run);
          // Nothing already written is computed again, except the one micro-batch that reopens the
          // outputs when every one had been written.
          int64_t expect = total - written_before;
          CHECK(static_cast<int64_t>(world.outbox.micro_batches_sent) == std::max<int64_t>(expect, 1));
        }
        CHECK(run.state() == JobState::DONE);
        expect_output_is_x(out);
        fs::remove_all(state);
        fs::remove_all(out);
      }
    }
  }
}
