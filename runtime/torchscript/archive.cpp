#include "runtime/torchscript/archive.h"

#include <charconv>
#include <cstring>
#include <set>
#include <unordered_map>

#include "runtime/error.h"
#include "runtime/printable.h"
#include "runtime/torchscript/unpickler.h"

namespace convoy {
namespace {

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Hooks see values built from untrusted bytes, possibly nested deep or self-referencing until the
// unpickler checks its result, so they inspect kinds without IValue's checked accessors (whose
// messages print the value).
int64_t int_arg(const IValue& v, const char* what) {
  if (v.is_int()) return std::get<int64_t>(v.v);
  fail(ErrorKind::kInvalidInput, what, " must be an int, not a ", v.kind_name());
}
const std::string& string_arg(const IValue& v, const char* what) {
  if (v.is_string()) return std::get<std::string>(v.v);
  fail(ErrorKind::kInvalidInput, what, " must be a str, not a ", v.kind_name());
}
const IValueList& sequence_arg(const IValue& v, const char* what) {
  if (v.is_tuple()) return std::get<std::shared_ptr<TupleBox>>(v.v)->items;
  if (v.is_list()) return std::get<std::shared_ptr<ListBox>>(v.v)->items;
  fail(ErrorKind::kInvalidInput, what, " must be a tuple or list, not a ", v.kind_name());
}
Shape int_sequence(const IValue& v, const char* what) {
  Shape out;
  for (const IValue& x : sequence_arg(v, what)) out.push_back(int_arg(x, what));
  return out;
}
void expect_args(const PickleGlobal& g, const IValueList& args, size_t lo, size_t hi) {
  CONVOY_CHECK(args.size() >= lo && args.size() <= hi, printable(g.qualified()), " takes ",
               lo == hi ? "" : "from ", lo, lo == hi ? "" : str_cat(" to ", hi), " arguments, got ",
               args.size());
}

constexpr std::string_view kTorchScriptPrefix = "__torch__";

bool is_script_class(const PickleGlobal& g) {
  bool torch_module = g.module == kTorchScriptPrefix || starts_with(g.module, "__torch__.");
  // __torch__.torch.classes.* are C++ custom classes: their state only means something to C++ code
  // Convoy does not have.
  return torch_module && !starts_with(g.module, "__torch__.torch.classes");
}
bool is_storage_class(const PickleGlobal& g) { return g.module == "torch" && ends_with(g.name, "Storage"); }

const std::set<std::string>& typed_container_builders() {
  static const std::set<std::string> kNames = {"build_intlist", "build_doublelist", "build_boollist",
                                               "build_tensorlist", "restore_type_tag"};
  return kNames;
}

// Reads one pickle of the archive, resolving tensors' persistent ids against records under
// `<top>/<storage_folder>/`.
class PickleLoader {
 public:
  PickleLoader(Archive& archive, std::string storage_folder)
      : a_(archive), zip_(*archive.zip), folder_(std::move(storage_folder)) {}

  IValue load(const std::string& relative) {
    std::string record = a_.top_folder + "/" + relative;
    ZipBytes bytes = zip_.read(record, /*verify_crc=*/true);
    UnpicklerHooks hooks;
    hooks.allow_global = [](const PickleGlobal& g) {
      if (is_script_class(g) || is_storage_class(g)) return true;
      if (g.module == "torch._utils") return g.name == "_rebuild_tensor_v2" || g.name == "_rebuild_parameter";
      if (g.module == "torch") return g.name == "device";
      if (g.module == "collections") return g.name == "OrderedDict";
      if (g.module == "torch.jit._pickle") return typed_container_builders().count(g.name) != 0;
      return false;
    };
    hooks.call = [this](const PickleGlobal& g, IValueList& args) { return call(g, args); };
    hooks.new_object = [](const PickleGlobal& g, IValueList& args) -> IValue {
      CONVOY_CHECK(is_script_class(g), "'", printable(g.qualified()), "' cannot be instantiated");
      CONVOY_CHECK(args.empty(), "'", printable(g.qualified()), "' is instantiated with ", args.size(),
                   " arguments; TorchScript objects take none");
      auto obj = std::make_shared<Object>();
      obj->type_name = g.qualified();
      return IValue(std::move(obj));
    };
    hooks.build = [](IValue object, IValue state) -> IValue {
      CONVOY_CHECK(object.is_object(), "BUILD applies to a ", object.kind_name(), ", not a scripted object");
      Object& obj = *std::get<std::shared_ptr<Object>>(object.v);
      if (state.is_dict()) {
        // Indexed rather than Object::set, so that a hostile dict of many keys stays linear.
        std::unordered_map<std::string, size_t> index;
        for (size_t i = 0; i < obj.attrs.size(); ++i) index.emplace(obj.attrs[i].first, i);
        for (auto& [k, v] : std::get<std::shared_ptr<DictBox>>(state.v)->items) {
          CONVOY_CHECK(k.is_string(), "an attribute name of ", printable(obj.type_name), " is a ",
                       k.kind_name(), ", not a str");
          const std::string& name = std::get<std::string>(k.v);
          auto [it, inserted] = index.emplace(name, obj.attrs.size());
          if (inserted) {
            obj.attrs.emplace_back(name, v);
          } else {
            obj.attrs[it->second].second = v;
          }
        }
      } else {
        obj.set("__state__", state);
      }
      return object;
    };
    hooks.global_value = [](const PickleGlobal& g) -> IValue {
      CONVOY_CHECK(is_storage_class(g), "'", printable(g.qualified()), "' cannot be used as a value");
      return IValue(g.name);
    };
    hooks.persistent_load = [this](const IValue& pid) { return load_storage(pid); };
    return unpickle(bytes.view(), str_cat(a_.path, ": ", printable(record)), hooks);
  }

 private:
  IValue call(const PickleGlobal& g, IValueList& args) {
    if (g.module == "torch._utils" && g.name == "_rebuild_tensor_v2") return rebuild_tensor(g, args);
    if (g.module == "torch._utils" && g.name == "_rebuild_parameter") {
      // (data, requires_grad, backward_hooks): gradients do not exist here, the data is the value.
      expect_args(g, args, 3, 3);
      CONVOY_CHECK(args[0].is_tensor(), "the data of a parameter must be a tensor, not a ",
                   args[0].kind_name());
      return args[0];
    }
    if (g.module == "collections" && g.name == "OrderedDict") {
      expect_args(g, args, 0, 1);
      IValue d = IValue::dict({});
      if (args.size() == 1) {
        auto& items = std::get<std::shared_ptr<DictBox>>(d.v)->items;
        for (const IValue& kv : sequence_arg(args[0], "OrderedDict items")) {
          const IValueList& pair = sequence_arg(kv, "an OrderedDict item");
          CONVOY_CHECK(pair.size() == 2, "an OrderedDict item has ", pair.size(), " elements, not 2");
          items.emplace_back(pair[0], pair[1]);
        }
      }
      return d;
    }
    if (g.module == "torch" && g.name == "device") {
      expect_args(g, args, 1, 2);
      std::string name = string_arg(args[0], "torch.device type");
      if (args.size() == 2 && !args[1].is_none())
        name += str_cat(":", int_arg(args[1], "torch.device index"));
      return IValue(Device{name});
    }
    if (g.module == "torch.jit._pickle") {
      if (g.name == "restore_type_tag") {
        // (value, "List[str]"): the tag only restores the static type, which the code annotates too.
        expect_args(g, args, 2, 2);
        string_arg(args[1], "type tag");
        return args[0];
      }
      expect_args(g, args, 1, 1);
      CONVOY_CHECK(args[0].is_list(), printable(g.qualified()), " needs a list, not a ", args[0].kind_name());
      const char* expected = g.name == "build_intlist"      ? "int"
                             : g.name == "build_doublelist" ? "float"
                             : g.name == "build_boollist"   ? "bool"
                                                            : "Tensor";
      for (const IValue& x : std::get<std::shared_ptr<ListBox>>(args[0].v)->items) {
        bool ok = g.name == "build_intlist"      ? x.is_int()
                  : g.name == "build_doublelist" ? x.is_double()
                  : g.name == "build_boollist"   ? x.is_bool()
                                                 : x.is_tensor();
        CONVOY_CHECK(ok, printable(g.qualified()), " holds a ", x.kind_name(), " among its ", expected, "s");
      }
      return args[0];
    }
    fail(ErrorKind::kInvalidInput, "'", printable(g.qualified()), "' cannot be called");
  }

  // ('storage', <StorageClass>, key, location, numel) → a 1-d tensor spanning the whole storage.
  IValue load_storage(const IValue& pid) {
    const IValueList& t = sequence_arg(pid, "a persistent id");
    CONVOY_CHECK(t.size() == 5, "a persistent id has ", t.size(),
                 " fields; expected ('storage', class, key, location, numel)");
    CONVOY_CHECK(string_arg(t[0], "the persistent id's kind") == "storage", "unknown persistent id kind '",
                 printable(std::get<std::string>(t[0].v)), "'");
    DType dtype = dtype_from_storage_class(string_arg(t[1], "the storage class"));
    const std::string& key = string_arg(t[2], "the storage key");
    string_arg(t[3], "the storage location");  // "cpu", "cuda:0": everything loads to host memory
    int64_t numel = int_arg(t[4], "the storage size");
    CONVOY_CHECK(!key.empty(), "empty storage key");
    CONVOY_CHECK(numel >= 0, "storage '", printable(key), "' has a negative size ", numel);
    std::string relative = folder_ + "/" + key;
    std::string record = a_.top_folder + "/" + relative;

    auto cached = a_.storages.find(relative);
    std::shared_ptr<Storage> storage;
    if (cached != a_.storages.end()) {
      auto& [first_dtype, first_numel] = shapes_[relative];
      CONVOY_CHECK(first_dtype == dtype && first_numel == numel, "storage '", printable(record),
                   "' is named as ", numel, " ", dtype_name(dtype), " elements after ", first_numel, " ",
                   dtype_name(first_dtype));
      storage = cached->second;
    } else {
      const ZipEntry* entry = zip_.find(record);
      CONVOY_CHECK(entry != nullptr, "tensor data '", printable(record), "' is missing from the archive");
      size_t esize = dtype_size(dtype);
      CONVOY_CHECK(static_cast<uint64_t>(numel) <= entry->uncompressed_size / esize, "record '",
                   printable(record), "' has ", entry->uncompressed_size, " bytes, too few for a storage of ",
                   numel, " ", dtype_name(dtype), " elements (", esize, " bytes each)");
      size_t nbytes = static_cast<size_t>(numel) * esize;
      ZipBytes bytes = zip_.read(*entry);
      if (reinterpret_cast<uintptr_t>(bytes.data) % esize == 0) {
        storage = std::make_shared<Storage>(bytes.owner, bytes.data, nbytes);
      } else {
        // Only archives rewritten by a tool that does not align records get here (PyTorch aligns
        // every record to 64 bytes): copy, since a misaligned element pointer is undefined behaviour.
        storage = Storage::allocate(nbytes);
        if (nbytes > 0) std::memcpy(storage->data(), bytes.data, nbytes);
      }
      a_.storages.emplace(relative, storage);
      shapes_[relative] = {dtype, numel};
      record_of_[storage.get()] = record;
    }
    return IValue(Tensor::from_storage(storage, dtype, {numel}, {1}, 0, record));
  }

  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  IValue rebuild_tensor(const PickleGlobal& g, IValueList& args) {
    expect_args(g, args, 6, 7);
    CONVOY_CHECK(args[0].is_tensor(), "the storage of a tensor must come from a persistent id, not a ",
                 args[0].kind_name());
    const Tensor& whole = std::get<Tensor>(args[0].v);
    auto known = record_of_.find(whole.storage().get());
    CONVOY_CHECK(known != record_of_.end() && whole.dim() == 1 && whole.offset() == 0 &&
                     whole.stride(0) == 1 && whole.nbytes() == whole.storage()->nbytes(),
                 "the storage argument of a tensor is a tensor, not a storage from a persistent id");
    const std::string& record = known->second;
    int64_t offset = int_arg(args[1], "the storage offset");
    Shape sizes = int_sequence(args[2], "the tensor size");
    Shape strides = int_sequence(args[3], "the tensor stride");
    CONVOY_CHECK(args[4].is_bool(), "requires_grad must be a bool, not a ", args[4].kind_name());
    CONVOY_CHECK(sizes.size() == strides.size(), "tensor in '", printable(record), "': size ",
                 shape_str(sizes), " and stride ", shape_str(strides), " differ in rank");
    // Checked here with overflow-safe arithmetic, before Tensor::from_storage checks it again, so
    // that absurd values from a corrupt pickle are an error rather than an overflow.
    int64_t capacity = whole.numel();
    CONVOY_CHECK(offset >= 0 && offset <= capacity, "tensor in '", printable(record), "': storage offset ",
                 offset, " is outside its storage of ", capacity, " elements");
    int64_t last = offset;
    bool empty = false;
    for (size_t i = 0; i < sizes.size(); ++i) {
      CONVOY_CHECK(sizes[i] >= 0 && strides[i] >= 0, "tensor in '", printable(record),
                   "': negative size or stride (size ", shape_str(sizes), ", stride ", shape_str(strides),
                   ")");
      if (sizes[i] == 0) empty = true;
    }
    // Even an empty tensor's other sizes get multiplied together (element counts, contiguous
    // strides): their product must fit.
    int64_t product = 1;
    for (int64_t s : sizes) {
      CONVOY_CHECK(s == 0 || !__builtin_mul_overflow(product, s, &product), "tensor in '", printable(record),
                   "': size ", shape_str(sizes), " has more elements than fit in 64 bits");
    }
    if (!empty) {
      for (size_t i = 0; i < sizes.size(); ++i) {
        int64_t span;
        bool overflow = __builtin_mul_overflow(sizes[i] - 1, strides[i], &span) ||
                        __builtin_add_overflow(last, span, &last);
        CONVOY_CHECK(!overflow && last < capacity, "tensor in '", printable(record), "' with size ",
                     shape_str(sizes), ", stride ", shape_str(strides), " and offset ", offset,
                     " reaches past its storage of ", capacity, " ", dtype_name(whole.dtype()), " elements");
      }
    }
    return IValue(Tensor::from_storage(whole.storage(), whole.dtype(), sizes, strides, offset,
                                       str_cat("tensor in '", printable(record), "'")));
  }

  Archive& a_;
  const ZipReader& zip_;
  std::string folder_;
  std::unordered_map<std::string, std::pair<DType, int64_t>> shapes_;  // first use of each storage
  std::unordered_map<const Storage*, std::string> record_of_;
};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::string find_top_folder(const ZipReader& zip) {
  const std::string& P = zip.path();
  CONVOY_CHECK(!zip.entries().empty(), P, ": the zip archive is empty (not a TorchScript archive)");
  std::string top;
  for (const ZipEntry& e : zip.entries()) {
    size_t slash = e.name.find('/');
    CONVOY_CHECK(slash != std::string::npos && slash > 0, P, ": record '", printable(e.name),
                 "' is not inside a folder (a TorchScript archive keeps every record under one top folder)");
    std::string folder = e.name.substr(0, slash);
    if (top.empty()) top = folder;
    CONVOY_CHECK(folder == top, P, ": records in several top folders ('", printable(top), "/' and '",
                 printable(folder), "/'); a TorchScript archive has exactly one");
  }
  return top;
}

}  // namespace

const std::string* Archive::find_code(const std::string& relative_path) const {
  auto it = code.find(relative_path);
  return it == code.end() ? nullptr : &it->second;
}

Archive load_archive(const std::string& path) { return load_archive(ZipReader::open(path)); }

Archive load_archive(ZipReader zip_reader) {
  Archive a;
  a.path = zip_reader.path();
  a.zip = std::make_shared<ZipReader>(std::move(zip_reader));
  const ZipReader& zip = *a.zip;
  const std::string& P = a.path;
  a.top_folder = find_top_folder(zip);
  const std::string top = a.top_folder + "/";

  CONVOY_CHECK(
      zip.contains(top + "data.pkl"), P, ": no '", printable(top),
      "data.pkl' (not a TorchScript archive: torch.save() files and older formats are not supported)");

  // torch 2.x moved the version under .data/ and reads that first; so do we.
  std::string version_record = zip.contains(top + ".data/version") ? top + ".data/version" : top + "version";
  CONVOY_CHECK(zip.contains(version_record), P, ": no '", printable(top), "version' record");
  std::string version_text = trim(zip.read(version_record, /*verify_crc=*/true).view());
  auto [end, ec] = std::from_chars(version_text.data(), version_text.data() + version_text.size(), a.version);
  CONVOY_CHECK(ec == std::errc() && end == version_text.data() + version_text.size() && a.version >= 1, P,
               ": '", printable(version_record), "' holds '", printable(version_text, 32),
               "', not a format version");
  CONVOY_CHECK_KIND(kUnsupported, a.version <= kMaxArchiveVersion, P, ": format version ", a.version,
                    " is newer than the newest this loader reads (", kMaxArchiveVersion, ")");
  if (zip.contains(top + "byteorder")) {
    std::string order = trim(zip.read(top + "byteorder", /*verify_crc=*/true).view());
    CONVOY_CHECK_KIND(kUnsupported, order == "little", P, ": tensors are stored in '", printable(order, 32),
                      "' byte order; only little-endian archives are supported");
  }

  for (const ZipEntry& e : zip.entries()) {
    if (starts_with(e.name, top + "code/") && ends_with(e.name, ".py")) {
      a.code.emplace(e.name.substr(top.size()), std::string(zip.read(e, /*verify_crc=*/true).view()));
    }
  }

  if (zip.contains(top + "constants.pkl")) {
    IValue constants = PickleLoader(a, "constants").load("constants.pkl");
    CONVOY_CHECK(constants.is_tuple(), P, ": ", printable(top), "constants.pkl holds a ",
                 constants.kind_name(), ", not a tuple of constants");
    a.constants = std::get<std::shared_ptr<TupleBox>>(constants.v)->items;
  }
  a.module = PickleLoader(a, "data").load("data.pkl");
  CONVOY_CHECK(a.module.is_object(), P, ": ", printable(top), "data.pkl holds a ", a.module.kind_name(),
               ", not a scripted module");
  return a;
}

}  // namespace convoy
