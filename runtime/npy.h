// NumPy .npy files: job inputs are read from them and outputs written to them.
//
// Read: format versions 1.0, 2.0 and 3.0; little-endian (or byte-order-free) C-order arrays of
// float16/32/64, int8/16/32/64, uint8 and bool (descr '<f2' '<f4' '<f8' '|i1' '<i2' '<i4' '<i8'
// '|u1' '|b1'). Anything else — big-endian data, Fortran order, object or structured arrays,
// dtypes torch has no equivalent of ('<u2', complex) — is an error naming the file and the descr;
// a header whose shape disagrees with the file's size is an error too. Data is memory-mapped
// (private, copy-on-write), not copied.
//
// Write: version 1.0 (2.0 when the header needs it), C order, little-endian, header padded to 64
// bytes so the data is aligned. bfloat16 has no NumPy dtype: it is written as float32 ('<f4'),
// exactly (every bfloat16 value is a float32 value), and so reads back as float32. Files appear
// atomically: data goes to a temporary file in the same folder that is renamed into place.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/tensor.h"

namespace convoy {

// The whole array, backed by a mapping of the file.
Tensor read_npy(const std::string& path);
// Writes `t` (any strides) to `path` atomically.
void write_npy(const std::string& path, const Tensor& t);

// An .npy file opened for reading samples (dim 0) in ranges without loading the rest.
class NpyFile {
 public:
  static NpyFile open(const std::string& path);

  const std::string& path() const { return path_; }
  DType dtype() const { return tensor_.dtype(); }
  const Shape& shape() const { return tensor_.sizes(); }
  int64_t rows() const;  // shape()[0]; an error for a 0-dim array
  // The whole array and rows [begin, end) of it: views of the mapping, no copy.
  const Tensor& tensor() const { return tensor_; }
  Tensor slice(int64_t begin, int64_t end) const;

 private:
  std::string path_;
  Tensor tensor_;
};

// An .npy file of known dtype and shape, filled in row ranges (dim 0) in any order — the job runner
// writes each micro-batch's result at its offset, so a replayed micro-batch rewrites the same bytes
// — and renamed into place by commit(). An uncommitted writer removes its temporary file.
class NpyWriter {
 public:
  // `dtype` is the dtype of the tensors given to write_rows; kBFloat16 is stored as float32.
  // `temp_path`: where the rows go until commit(); "" picks a fresh unique name. A file already at
  // `temp_path` is replaced.
  static NpyWriter create(const std::string& path, DType dtype, const Shape& shape,
                          const std::string& temp_path = "");
  // Reopens the temporary file that create(path, dtype, shape, temp_path) made, maybe in an earlier
  // process, to write more rows: the rows written then stay. Throws convoy::Error(kIo) when it is
  // missing, and kInvalidInput when its header or size is not what that create() writes.
  static NpyWriter resume(const std::string& path, DType dtype, const Shape& shape,
                          const std::string& temp_path);
  NpyWriter(NpyWriter&& other) noexcept;
  NpyWriter& operator=(NpyWriter&& other) noexcept;
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;
  ~NpyWriter();

  const std::string& path() const { return path_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  // Writes `rows` (shape [n, shape()[1:]...], dtype()) at rows [begin, begin + n).
  void write_rows(int64_t begin, const Tensor& rows);
  // Flushes the data to disk and renames the temporary file to path(). Once only.
  void commit();
  // Makes the rows written so far durable (fdatasync), e.g. before a ledger records them.
  void sync();
  // Closes the file without removing it, so a later resume() carries on; the writer is then spent.
  void keep();
  const std::string& temp_path() const { return temp_path_; }

 private:
  NpyWriter() = default;
  void close_and_remove();

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  uint64_t data_offset_ = 0;
  uint64_t row_bytes_ = 0;  // in the file (float32 for bfloat16)
};

}  // namespace convoy
