#include "coordinator/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "runtime/error.h"

namespace convoy {

namespace {

// One prepared statement, finalized on scope exit. Binds are 1-based as in SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      fail(ErrorKind::kInternal, path, ": cannot prepare '", sql, "': ", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW: true; SQLITE_DONE: false; anything else throws.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(ErrorKind::kIo, path_, ": ", sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
    sqlite3_reset(s_);
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  double f64(int col) const { return sqlite3_column_double(s_, col); }
  std::string text(int col) const {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  const std::string& path_;
};

// Inputs are stored one per line (paths are absolute and checked to hold no newline on submit).
std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += s + "\n";
  return out;
}
std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

}  // namespace

Ledger::Ledger(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  CONVOY_CHECK_KIND(kIo, !ec, "state_dir ", state_dir, ": cannot create: ", ec.message());
  path_ = (std::filesystem::path(state_dir) / "ledger.sqlite").string();
  std::string lock = (std::filesystem::path(state_dir) / "lock").string();
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) fail(ErrorKind::kIo, lock, ": cannot open: ", std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::ifstream in(lock);
    std::string holder;
    std::getline(in, holder);
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail(ErrorKind::kIo, "state_dir ", state_dir, " is in use by another coordinator",
         holder.empty() ? std::string() : " (" + holder + ")", "; give each coordinator its own state_dir");
  }
  std::string me = "pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, me.data(), me.size(), 0) < 0) {
    // only a hint for the message above
  }
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    ::close(lock_fd_);
    fail(ErrorKind::kIo, path_, ": cannot open the job ledger: ", why);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    // WAL: a commit is one append (and, with synchronous=FULL, one fsync of the log), readers never
    // block the writer. FULL: a commit survives power loss, not only a process crash.
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec(
        "CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, name TEXT, job_file TEXT, model TEXT, "
        "output TEXT, backend TEXT, inputs TEXT, batch_size INTEGER, state TEXT, error TEXT, "
        "submitted REAL, finished REAL, elapsed REAL, pipeline INTEGER, samples INTEGER, "
        "samples_done INTEGER, micro_batches INTEGER, micro_batches_done INTEGER, max_workers INTEGER, "
        "owner TEXT NOT NULL DEFAULT '', owner_name TEXT NOT NULL DEFAULT '', overwrite INTEGER NOT NULL "
        "DEFAULT 0)");
    add_missing_columns();
    exec(
        "CREATE TABLE IF NOT EXISTS written (job INTEGER, seq INTEGER, PRIMARY KEY (job, seq)) WITHOUT "
        "ROWID");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    ::close(lock_fd_);
    throw;
  }
}

Ledger::~Ledger() {
  sqlite3_close(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

// A ledger written before jobs had owners gets their columns (its jobs belong to nobody: only an
// admin key may act on them).
void Ledger::add_missing_columns() {
  std::set<std::string> have;
  {
    Stmt q(db_, "PRAGMA table_info(jobs)", path_);
    while (q.step()) have.insert(q.text(1));
  }
  if (!have.count("owner")) exec("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
  if (!have.count("owner_name")) exec("ALTER TABLE jobs ADD COLUMN owner_name TEXT NOT NULL DEFAULT ''");
  if (!have.count("overwrite")) exec("ALTER TABLE jobs ADD COLUMN overwrite INTEGER NOT NULL DEFAULT 0");
}

void Ledger::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    fail(ErrorKind::kIo, path_, ": ", why, " (", sql, ")");
  }
}

std::vector<LedgerJob> Ledger::load() {
  std::vector<LedgerJob> jobs;
  Stmt q(
      db_,
      "SELECT id, name, job_file, model, output, backend, inputs, batch_size, state, error, submitted, "
      "finished, elapsed, pipeline, samples, samples_done, micro_batches, micro_batches_done, max_workers, "
      "owner, owner_name, overwrite FROM jobs "
      "ORDER BY id",
      path_);
  while (q.step()) {
    LedgerJob j;
    j.id = static_cast<uint64_t>(q.i64(0));
    j.request.name = q.text(1);
    j.request.job_file = q.text(2);
    j.request.model_path = q.text(3);
    j.request.output = q.text(4);
    j.request.backend = q.text(5);
    j.request.input_paths = split_lines(q.text(6));
    j.request.batch_size = q.i64(7);
    j.state = q.text(8);
    j.error = q.text(9);
    j.submitted_unix = q.f64(10);
    j.finished_unix = q.f64(11);
    j.elapsed_seconds = q.f64(12);
    j.pipeline = static_cast<uint32_t>(q.i64(13));
    j.samples = q.i64(14);
    j.samples_done = q.i64(15);
    j.micro_batches_total = q.i64(16);
    j.micro_batches_done = q.i64(17);
    j.request.max_workers = static_cast<uint32_t>(q.i64(18));
    j.request.owner = q.text(19);
    j.request.owner_name = q.text(20);
    j.request.overwrite = q.i64(21) != 0;
    jobs.push_back(std::move(j));
  }
  for (LedgerJob& j : jobs) {
    if (j.ended()) continue;
    Stmt one(db_, "SELECT seq FROM written WHERE job = ?1 ORDER BY seq", path_);
    one.bind(1, static_cast<int64_t>(j.id));
    while (one.step()) j.written.push_back(one.i64(0));
  }
  return jobs;
}

uint64_t Ledger::next_job_id() {
  Stmt q(db_, "SELECT COALESCE(MAX(id), 0) + 1 FROM jobs", path_);
  q.step();
  return static_cast<uint64_t>(q.i64(0));
}

void Ledger::add(const LedgerJob& j) {
  Stmt q(db_,
         "INSERT INTO jobs (id, name, job_file, model, output, backend, inputs, batch_size, state, error, "
         "submitted, finished, elapsed, pipeline, samples, samples_done, micro_batches, micro_batches_done, "
         "max_workers, owner, owner_name, overwrite) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
         "0, 0, 0, "
         "0, 0, 0, 0, ?12, ?13, ?14, ?15)",
         path_);
  q.bind(1, static_cast<int64_t>(j.id))
      .bind(2, j.request.name)
      .bind(3, j.request.job_file)
      .bind(4, j.request.model_path)
      .bind(5, j.request.output)
      .bind(6, j.request.backend)
      .bind(7, join_lines(j.request.input_paths))
      .bind(8, j.request.batch_size)
      .bind(9, j.state)
      .bind(10, j.error)
      .bind(11, j.submitted_unix)
      .bind(12, static_cast<int64_t>(j.request.max_workers))
      .bind(13, j.request.owner)
      .bind(14, j.request.owner_name)
      .bind(15, static_cast<int64_t>(j.request.overwrite))
      .run();
}

void Ledger::running(uint64_t id, uint32_t pipeline, int64_t samples, int64_t micro_batches) {
  Stmt q(db_,
         "UPDATE jobs SET state = 'running', pipeline = ?2, samples = ?3, micro_batches = ?4 WHERE id = ?1",
         path_);
  q.bind(1, static_cast<int64_t>(id))
      .bind(2, static_cast<int64_t>(pipeline))
      .bind(3, samples)
      .bind(4, micro_batches)
      .run();
}

void Ledger::written(uint64_t id, const std::vector<int64_t>& seqs, int64_t micro_batches_done,
                     int64_t samples_done) {
  if (seqs.empty()) return;
  exec("BEGIN IMMEDIATE");
  try {
    Stmt ins(db_, "INSERT OR IGNORE INTO written (job, seq) VALUES (?1, ?2)", path_);
    for (int64_t seq : seqs) ins.bind(1, static_cast<int64_t>(id)).bind(2, seq).run();
    Stmt up(db_, "UPDATE jobs SET micro_batches_done = ?2, samples_done = ?3 WHERE id = ?1", path_);
    up.bind(1, static_cast<int64_t>(id)).bind(2, micro_batches_done).bind(3, samples_done).run();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Ledger::ended(uint64_t id, const std::string& state, const std::string& error, double finished_unix,
                   double elapsed_seconds, int64_t micro_batches_done, int64_t samples_done) {
  exec("BEGIN IMMEDIATE");
  try {
    Stmt up(db_,
            "UPDATE jobs SET state = ?2, error = ?3, finished = ?4, elapsed = ?5, micro_batches_done = ?6, "
            "samples_done = ?7 WHERE id = ?1",
            path_);
    up.bind(1, static_cast<int64_t>(id))
        .bind(2, state)
        .bind(3, error)
        .bind(4, finished_unix)
        .bind(5, elapsed_seconds)
        .bind(6, micro_batches_done)
        .bind(7, samples_done)
        .run();
    Stmt del(db_, "DELETE FROM written WHERE job = ?1", path_);
    del.bind(1, static_cast<int64_t>(id)).run();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace convoy
