#include "coordinator/job_progress.h"

#include <algorithm>
#include <filesystem>

#include "runtime/error.h"

namespace convoy {

Admission::Admission(int64_t total, uint32_t limit, const std::set<int64_t>& written)
    : total_(total), limit_(std::max<uint32_t>(limit, 1)) {
  for (int64_t seq : written)
    if (seq >= 0 && seq < total_) written_.insert(seq);
  done_ = static_cast<int64_t>(written_.size());
  skip_written();
}

int64_t Admission::admit() {
  CONVOY_ASSERT(can_admit(), "admit() without a credit");
  int64_t seq;
  if (!requeued_.empty()) {
    seq = *requeued_.begin();
    requeued_.erase(requeued_.begin());
  } else {
    seq = next_++;
    skip_written();
  }
  in_flight_.insert(seq);
  return seq;
}

bool Admission::complete(int64_t seq) {
  if (!in_flight_.erase(seq) && !requeued_.erase(seq)) return false;
  ++done_;
  return true;
}

int64_t Admission::lowest_outstanding() const {
  int64_t low = next_;
  if (!in_flight_.empty()) low = std::min(low, *in_flight_.begin());
  if (!requeued_.empty()) low = std::min(low, *requeued_.begin());
  return low;
}

std::vector<int64_t> Admission::requeue_in_flight() {
  std::vector<int64_t> out(in_flight_.begin(), in_flight_.end());
  for (int64_t seq : out) {
    ++replays_[seq];
    requeued_.insert(seq);
  }
  in_flight_.clear();
  return out;
}

int Admission::replays(int64_t seq) const {
  auto it = replays_.find(seq);
  return it == replays_.end() ? 0 : it->second;
}

void Admission::set_limit(uint32_t limit) { limit_ = std::max<uint32_t>(limit, 1); }

int64_t micro_batches(int64_t samples, int64_t batch_size) { return (samples + batch_size - 1) / batch_size; }
int64_t micro_batch_begin(int64_t seq, int64_t batch_size) { return seq * batch_size; }
int64_t micro_batch_end(int64_t seq, int64_t samples, int64_t batch_size) {
  return std::min(samples, (seq + 1) * batch_size);
}

OutputAssembler::OutputAssembler(std::string folder, int64_t samples, int64_t batch_size, std::string what,
                                 std::string partial_tag, bool resume)
    : folder_(std::move(folder)),
      samples_(samples),
      batch_size_(batch_size),
      what_(std::move(what)),
      tag_(std::move(partial_tag)),
      resume_(resume && !tag_.empty()) {}

std::string OutputAssembler::partial_path(const std::string& folder, size_t index, const std::string& tag) {
  return (std::filesystem::path(folder) / ("output_" + std::to_string(index) + ".npy." + tag + ".partial"))
      .string();
}

size_t OutputAssembler::remove_partials(const std::string& folder, const std::string& tag) {
  size_t n = 0;
  for (size_t i = 0;; ++i) {
    std::error_code ec;
    if (!std::filesystem::remove(partial_path(folder, i, tag), ec)) break;
    ++n;
  }
  return n;
}

void OutputAssembler::write(int64_t seq, const std::vector<Tensor>& outs) {
  int64_t begin = micro_batch_begin(seq, batch_size_), end = micro_batch_end(seq, samples_, batch_size_);
  CONVOY_CHECK(seq >= 0 && begin < samples_, what_, ": result for micro-batch ", seq, " of ",
               micro_batches(samples_, batch_size_));
  if (writers_.empty()) {
    CONVOY_CHECK(!outs.empty(), what_, ": micro-batch ", seq, " returned no outputs");
    std::error_code ec;
    std::filesystem::create_directories(folder_, ec);
    CONVOY_CHECK_KIND(kIo, !ec, folder_, ": cannot create the output folder: ", ec.message());
    std::vector<NpyWriter> writers;
    for (size_t i = 0; i < outs.size(); ++i) {
      const Tensor& t = outs[i];
      CONVOY_CHECK(t.dim() >= 1 && t.size(0) == end - begin, what_, ": output ", i, " is ", t.describe(),
                   " for a micro-batch of ", end - begin,
                   " samples; outputs must keep samples on dim 0 to be written per sample");
      Shape shape = t.sizes();
      shape[0] = samples_;
      std::string path = (std::filesystem::path(folder_) / ("output_" + std::to_string(i) + ".npy")).string();
      if (tag_.empty())
        writers.push_back(NpyWriter::create(path, t.dtype(), shape));
      else if (resume_)
        writers.push_back(NpyWriter::resume(path, t.dtype(), shape, partial_path(folder_, i, tag_)));
      else
        writers.push_back(NpyWriter::create(path, t.dtype(), shape, partial_path(folder_, i, tag_)));
    }
    writers_ = std::move(writers);
  }
  CONVOY_CHECK(outs.size() == writers_.size(), what_, ": micro-batch ", seq, " returned ", outs.size(),
               " outputs, the first returned ", writers_.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    const Tensor& t = outs[i];
    Shape expect = writers_[i].shape();
    expect[0] = end - begin;
    CONVOY_CHECK(t.sizes() == expect && t.dtype() == writers_[i].dtype(), what_, ": output ", i,
                 " of micro-batch ", seq, " (samples [", begin, ", ", end, ")) is ", t.describe(),
                 " but the first result gave ", dtype_name(writers_[i].dtype()), shape_str(expect));
  }
  for (size_t i = 0; i < outs.size(); ++i) writers_[i].write_rows(begin, outs[i]);
}

void OutputAssembler::sync() {
  for (NpyWriter& w : writers_) w.sync();
}

void OutputAssembler::commit() {
  for (NpyWriter& w : writers_) w.commit();
}

void OutputAssembler::keep() {
  for (NpyWriter& w : writers_) w.keep();
}

}  // namespace convoy
