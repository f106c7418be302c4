#include "runtime/npy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>

#include "runtime/error.h"

namespace convoy {
namespace {

static_assert(std::endian::native == std::endian::little, ".npy I/O assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kHeaderAlignment = 64;

struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr) munmap(addr, size);
  }
};

// Private, copy-on-write mapping: tensors read from it are writable views (an in-place op changes a
// private page, never the input file).
std::shared_ptr<Mapping> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::kIo, path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorKind::kIo, path, ": not a readable regular file");
  }
  auto m = std::make_shared<Mapping>();
  if (st.st_size > 0) {
    void* addr = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorKind::kIo, path, ": cannot map: ", std::strerror(err));
    }
    m->addr = addr;
    m->size = static_cast<size_t>(st.st_size);
  }
  ::close(fd);
  return m;
}

// --- header parsing: the Python dict literal numpy writes -------------------------------------------

struct HeaderValue {
  enum Kind { kString, kBool, kTuple, kOther } kind = kOther;
  std::string text;  // string value, or the token for kOther
  bool flag = false;
  std::vector<int64_t> ints;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& path) : s_(s), path_(path) {}

  template <typename... Args>
  [[noreturn]] void bad(Args&&... args) const {
    fail(ErrorKind::kInvalidInput, path_, ": malformed .npy header: ", std::forward<Args>(args)..., " in \"",
         printable(), "\"");
  }
  std::string printable() const {
    std::string out;
    for (char c : s_.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad("expected '", c, "' at character ", i_);
  }
  bool at_end() {
    ws();
    return i_ == s_.size();
  }
  std::string string() {
    ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
      bad("expected a quoted string at character ", i_);
    char q = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ >= s_.size()) bad("unterminated string");
    ++i_;
    return out;
  }
  int64_t integer() {
    ws();
    size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      int d = s_[i_++] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) bad("dimension too large");
      v = v * 10 + d;
    }
    if (i_ == start) bad("expected a non-negative integer at character ", start);
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 longs
    return v;
  }
  HeaderValue value() {
    ws();
    HeaderValue v;
    if (i_ >= s_.size()) bad("missing value");
    char c = s_[i_];
    if (c == '\'' || c == '"') {
      v.kind = HeaderValue::kString;
      v.text = string();
    } else if (s_.substr(i_, 4) == "True" || s_.substr(i_, 5) == "False") {
      v.kind = HeaderValue::kBool;
      v.flag = c == 'T';
      i_ += v.flag ? 4 : 5;
    } else if (c == '(') {
      ++i_;
      v.kind = HeaderValue::kTuple;
      if (!eat(')')) {
        while (true) {
          v.ints.push_back(integer());
          if (eat(')')) break;
          expect(',');
          if (eat(')')) break;
        }
      }
    } else {
      // Something numpy writes for dtypes we refuse anyway (a list of fields for structured
      // arrays, ...): keep its start for the message.
      size_t start = i_;
      int depth = 0;
      while (i_ < s_.size()) {
        char d = s_[i_];
        if (d == '[' || d == '(' || d == '{') ++depth;
        if (d == ']' || d == ')' || d == '}') {
          if (depth == 0) break;
          --depth;
        }
        if (d == ',' && depth == 0) break;
        ++i_;
      }
      v.text = std::string(s_.substr(start, i_ - start));
    }
    return v;
  }

 private:
  std::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
};

struct NpyHeader {
  DType dtype;
  Shape shape;
  uint64_t data_offset;
  uint64_t data_bytes;
};

DType dtype_from_descr(const std::string& descr, const std::string& path) {
  auto unsupported = [&](const char* why) {
    fail(ErrorKind::kUnsupported, path, ": dtype '", descr, "' is not supported (", why, ")");
  };
  if (descr.size() < 2) unsupported("not a plain little-endian dtype");
  char order = descr[0];
  std::string code = descr.substr(1);
  std::optional<DType> dtype;
  if (code == "f2")
    dtype = DType::kFloat16;
  else if (code == "f4")
    dtype = DType::kFloat32;
  else if (code == "f8")
    dtype = DType::kFloat64;
  else if (code == "i1")
    dtype = DType::kInt8;
  else if (code == "i2")
    dtype = DType::kInt16;
  else if (code == "i4")
    dtype = DType::kInt32;
  else if (code == "i8")
    dtype = DType::kInt64;
  else if (code == "u1")
    dtype = DType::kUInt8;
  else if (code == "b1")
    dtype = DType::kBool;
  if (!dtype) {
    if (code == "O" || code.rfind("O", 0) == 0)
      unsupported("object arrays cannot be read without running pickle");
    if (code.rfind("u", 0) == 0) unsupported("torch has no unsigned integer type wider than 8 bits");
    if (code.rfind("c", 0) == 0) unsupported("complex numbers are not supported");
    unsupported("supported: <f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 |b1");
  }
  bool one_byte = dtype_size(*dtype) == 1;
  if (order == '>' && !one_byte)
    unsupported("big-endian data; convert with arr.astype(arr.dtype.newbyteorder('<'))");
  if (order != '<' && order != '=' && !(one_byte && (order == '|' || order == '>'))) {
    unsupported("unknown byte order");
  }
  return *dtype;
}

NpyHeader parse_header(const uint8_t* data, uint64_t size, const std::string& path) {
  CONVOY_CHECK(size >= kMagicSize + 4 && std::memcmp(data, kMagic, kMagicSize) == 0, path,
               ": not a .npy file (no \\x93NUMPY magic)");
  uint8_t major = data[6], minor = data[7];
  uint64_t header_len, header_start;
  if (major == 1) {
    uint16_t n;
    std::memcpy(&n, data + 8, 2);
    header_len = n;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    CONVOY_CHECK(size >= 12, path, ": truncated .npy header");
    uint32_t n;
    std::memcpy(&n, data + 8, 4);
    header_len = n;
    header_start = 12;
  } else {
    fail(ErrorKind::kUnsupported, path, ": .npy format version ", int{major}, ".", int{minor},
         " is not supported (1.0, 2.0 and 3.0 are)");
  }
  CONVOY_CHECK(header_len <= size - header_start, path, ": .npy header of ", header_len,
               " bytes is longer than the file (truncated file?)");
  std::string_view text(reinterpret_cast<const char*>(data + header_start), header_len);

  HeaderParser p(text, path);
  std::optional<std::string> descr;
  std::optional<bool> fortran;
  std::optional<Shape> shape;
  p.expect('{');
  if (!p.eat('}')) {
    while (true) {
      std::string key = p.string();
      p.expect(':');
      HeaderValue v = p.value();
      if (key == "descr") {
        if (descr) p.bad("'descr' given twice");
        if (v.kind != HeaderValue::kString) {
          fail(ErrorKind::kUnsupported, path, ": dtype ", v.text.substr(0, 80),
               " is not supported (structured arrays are not)");
        }
        descr = v.text;
      } else if (key == "fortran_order") {
        if (fortran) p.bad("'fortran_order' given twice");
        if (v.kind != HeaderValue::kBool) p.bad("'fortran_order' is not True or False");
        fortran = v.flag;
      } else if (key == "shape") {
        if (shape) p.bad("'shape' given twice");
        if (v.kind != HeaderValue::kTuple) p.bad("'shape' is not a tuple of integers");
        shape = v.ints;
      } else {
        p.bad("unknown key '", key, "'");
      }
      if (p.eat('}')) break;
      p.expect(',');
      if (p.eat('}')) break;
    }
  }
  if (!p.at_end()) p.bad("text after the dict");
  if (!descr || !fortran || !shape) p.bad("'descr', 'fortran_order' and 'shape' are all required");

  NpyHeader h;
  h.dtype = dtype_from_descr(*descr, path);
  CONVOY_CHECK_KIND(kUnsupported, !*fortran, path, ": Fortran-order arrays are not supported (dtype '",
                    *descr, "'); save a C-order copy with np.ascontiguousarray");
  h.shape = *shape;
  // Every product of dimensions must stay far from overflow, zero-sized ones included: code that
  // walks the shape (strides, element counts) multiplies them in any order.
  uint64_t numel = 1, nonzero = 1;
  for (int64_t d : h.shape) {
    if (d == 0) {
      numel = 0;
      continue;
    }
    CONVOY_CHECK(nonzero <= (uint64_t{1} << 62) / 16 / static_cast<uint64_t>(d), path, ": shape ",
                 shape_str(h.shape), " is too large");
    nonzero *= static_cast<uint64_t>(d);
  }
  if (numel != 0) numel = nonzero;
  h.data_offset = header_start + header_len;
  h.data_bytes = numel * dtype_size(h.dtype);
  CONVOY_CHECK(size - h.data_offset == h.data_bytes, path, ": header says shape ", shape_str(h.shape),
               " of '", *descr, "' (", h.data_bytes, " bytes of data) but the file has ",
               size - h.data_offset, " bytes after the header");
  return h;
}

// --- writing -------------------------------------------------------------------------------------------

DType file_dtype(DType dtype) { return dtype == DType::kBFloat16 ? DType::kFloat32 : dtype; }

const char* descr_of(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return "<f2";
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt8:
      return "|i1";
    case DType::kInt16:
      return "<i2";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kUInt8:
      return "|u1";
    case DType::kBool:
      return "|b1";
    case DType::kBFloat16:
      break;
  }
  fail(ErrorKind::kInternal, "no .npy descr for ", dtype_name(dtype));
}

std::string make_header(DType dtype, const Shape& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += str_cat(i > 0 ? ", " : "", shape[i]);
  if (shape.size() == 1) dims += ",";  // a 1-tuple, as Python prints it
  std::string spaced = str_cat("{'descr': '", descr_of(file_dtype(dtype)),
                               "', 'fortran_order': False, 'shape': (", dims, "), }");
  // Version 1.0 has a 16-bit header length; fall back to 2.0 when it does not fit.
  bool v2 = kMagicSize + 4 + spaced.size() + 1 > 0xffff;
  size_t prefix = kMagicSize + 2 + (v2 ? 4 : 2);
  size_t total = (prefix + spaced.size() + 1 + kHeaderAlignment - 1) / kHeaderAlignment * kHeaderAlignment;
  spaced.append(total - prefix - spaced.size() - 1, ' ');
  spaced += '\n';
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  uint32_t len = static_cast<uint32_t>(spaced.size());
  out.append(reinterpret_cast<const char*>(&len), v2 ? 4 : 2);
  return out + spaced;
}

void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(ErrorKind::kIo, path, ": write failed: ", std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

// Tensor bytes as they go into the file: contiguous, bfloat16 widened to float32.
Tensor file_layout(const Tensor& t) { return t.to(file_dtype(t.dtype())).contiguous(); }

std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return str_cat(path, ".tmp.", getpid(), ".", counter++);
}

int create_temp(const std::string& temp, const std::string& path) {
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail(ErrorKind::kIo, path, ": cannot create ", temp, ": ", std::strerror(errno));
  return fd;
}

void sync_and_rename(int fd, const std::string& temp, const std::string& path) {
  int rc = ::fsync(fd);
  int err = errno;
  if (::close(fd) != 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    if (rc == 0) err = errno;
    ::unlink(temp.c_str());
    fail(ErrorKind::kIo, path, ": cannot write: ", std::strerror(err));
  }
}

}  // namespace

Tensor read_npy(const std::string& path) { return NpyFile::open(path).tensor(); }

NpyFile NpyFile::open(const std::string& path) {
  std::shared_ptr<Mapping> m = map_file(path);
  const uint8_t* base = static_cast<const uint8_t*>(m->addr);
  NpyHeader h = parse_header(base, m->size, path);
  std::shared_ptr<Storage> storage;
  uint8_t* data = static_cast<uint8_t*>(m->addr) + h.data_offset;
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(h.dtype) == 0) {
    storage = std::make_shared<Storage>(m, data, h.data_bytes);
  } else {
    // numpy pads headers to 16 or 64 bytes; only hand-made files are misaligned. Copy rather than
    // hand out misaligned element pointers.
    storage = Storage::allocate(h.data_bytes);
    if (h.data_bytes > 0) std::memcpy(storage->data(), data, h.data_bytes);
  }
  NpyFile f;
  f.path_ = path;
  f.tensor_ = Tensor::from_storage(storage, h.dtype, h.shape, contiguous_strides(h.shape), 0, path);
  return f;
}

int64_t NpyFile::rows() const {
  CONVOY_CHECK(tensor_.dim() >= 1, path_, ": a 0-dimensional array has no rows");
  return tensor_.size(0);
}

Tensor NpyFile::slice(int64_t begin, int64_t end) const {
  int64_t n = rows();
  CONVOY_CHECK(0 <= begin && begin <= end && end <= n, path_, ": rows [", begin, ", ", end,
               ") are outside the array's ", n, " rows");
  Shape sizes = tensor_.sizes();
  sizes[0] = end - begin;
  return tensor_.as_strided(sizes, tensor_.strides(), begin * tensor_.stride(0));
}

void write_npy(const std::string& path, const Tensor& t) {
  CONVOY_CHECK(t.defined(), path, ": cannot write an undefined tensor");
  std::string header = make_header(t.dtype(), t.sizes());
  Tensor data = file_layout(t);
  std::string temp = temp_name(path);
  int fd = create_temp(temp, path);
  try {
    write_all(fd, header.data(), header.size(), 0, path);
    write_all(fd, data.raw_data(), data.nbytes(), header.size(), path);
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  sync_and_rename(fd, temp, path);
}

NpyWriter NpyWriter::create(const std::string& path, DType dtype, const Shape& shape,
                            const std::string& temp_path) {
  CONVOY_CHECK(!shape.empty(), path, ": an output written in rows needs at least one dimension");
  for (int64_t d : shape) CONVOY_CHECK(d >= 0, path, ": negative dimension in shape ", shape_str(shape));
  NpyWriter w;
  w.path_ = path;
  w.dtype_ = dtype;
  w.shape_ = shape;
  std::string header = make_header(dtype, shape);
  w.data_offset_ = header.size();
  w.row_bytes_ = dtype_size(file_dtype(dtype));
  for (size_t i = 1; i < shape.size(); ++i) w.row_bytes_ *= static_cast<uint64_t>(shape[i]);
  if (temp_path.empty()) {
    w.temp_path_ = temp_name(path);
    w.fd_ = create_temp(w.temp_path_, path);
  } else {
    w.temp_path_ = temp_path;
    w.fd_ = ::open(temp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd_ < 0) fail(ErrorKind::kIo, path, ": cannot create ", temp_path, ": ", std::strerror(errno));
  }
  write_all(w.fd_, header.data(), header.size(), 0, path);
  // Sized up front (sparse) so rows can be written in any order and unwritten ones read as zeros.
  uint64_t total = w.data_offset_ + w.row_bytes_ * static_cast<uint64_t>(shape[0]);
  if (::ftruncate(w.fd_, static_cast<off_t>(total)) != 0) {
    fail(ErrorKind::kIo, path, ": cannot size ", w.temp_path_, " to ", total,
         " bytes: ", std::strerror(errno));
  }
  return w;
}

NpyWriter NpyWriter::resume(const std::string& path, DType dtype, const Shape& shape,
                            const std::string& temp_path) {
  CONVOY_CHECK(!shape.empty(), path, ": an output written in rows needs at least one dimension");
  NpyWriter w;
  w.path_ = path;
  w.dtype_ = dtype;
  w.shape_ = shape;
  w.temp_path_ = temp_path;
  std::string header = make_header(dtype, shape);
  w.data_offset_ = header.size();
  w.row_bytes_ = dtype_size(file_dtype(dtype));
  for (size_t i = 1; i < shape.size(); ++i) w.row_bytes_ *= static_cast<uint64_t>(shape[i]);
  w.fd_ = ::open(temp_path.c_str(), O_RDWR | O_CLOEXEC);
  if (w.fd_ < 0) fail(ErrorKind::kIo, path, ": cannot reopen ", temp_path, ": ", std::strerror(errno));
  struct stat st {};
  std::string head(header.size(), '\0');
  uint64_t total = w.data_offset_ + w.row_bytes_ * static_cast<uint64_t>(shape[0]);
  bool ok = ::fstat(w.fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) == total &&
            ::pread(w.fd_, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()) &&
            head == header;
  if (!ok) {
    ::close(w.fd_);
    w.fd_ = -1;  // not ours to remove: the caller decides
    fail(ErrorKind::kInvalidInput, path, ": ", temp_path, " is not the partial ", dtype_name(dtype),
         shape_str(shape), " output this job started (", total, " bytes expected)");
  }
  return w;
}

void NpyWriter::sync() {
  CONVOY_CHECK(fd_ >= 0, path_, ": sync after commit");
  if (::fdatasync(fd_) != 0)
    fail(ErrorKind::kIo, path_, ": cannot sync ", temp_path_, ": ", std::strerror(errno));
}

void NpyWriter::keep() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

NpyWriter::NpyWriter(NpyWriter&& o) noexcept { *this = std::move(o); }

NpyWriter& NpyWriter::operator=(NpyWriter&& o) noexcept {
  if (this != &o) {
    close_and_remove();
    path_ = std::move(o.path_);
    temp_path_ = std::move(o.temp_path_);
    fd_ = o.fd_;
    dtype_ = o.dtype_;
    shape_ = std::move(o.shape_);
    data_offset_ = o.data_offset_;
    row_bytes_ = o.row_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

NpyWriter::~NpyWriter() { close_and_remove(); }

void NpyWriter::close_and_remove() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
    fd_ = -1;
  }
}

void NpyWriter::write_rows(int64_t begin, const Tensor& rows) {
  CONVOY_CHECK(fd_ >= 0, path_, ": write_rows after commit");
  CONVOY_CHECK(rows.dtype() == dtype_, path_, ": rows of ", dtype_name(rows.dtype()),
               " written to an array of ", dtype_name(dtype_));
  CONVOY_CHECK(rows.dim() == static_cast<int64_t>(shape_.size()) &&
                   std::equal(shape_.begin() + 1, shape_.end(), rows.sizes().begin() + 1),
               path_, ": rows of shape ", shape_str(rows.sizes()), " do not fit an array of shape ",
               shape_str(shape_));
  int64_t n = rows.size(0);
  CONVOY_CHECK(begin >= 0 && begin <= shape_[0] - n, path_, ": rows [", begin, ", ", begin + n,
               ") are outside the array's ", shape_[0], " rows");
  Tensor data = file_layout(rows);
  write_all(fd_, data.raw_data(), data.nbytes(), data_offset_ + static_cast<uint64_t>(begin) * row_bytes_,
            path_);
}

void NpyWriter::commit() {
  CONVOY_CHECK(fd_ >= 0, path_, ": commit called twice");
  int fd = fd_;
  fd_ = -1;
  sync_and_rename(fd, temp_path_, path_);
}

}  // namespace convoy
