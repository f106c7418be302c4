// A TorchScript archive (`torch.jit.save`, `ScriptModule.save`) loaded into memory: the module
// tree, the constants table, the printed TorchScript sources, and the format version. The parser
// and lowering (runtime/torchscript/) consume it.
//
// Layout of the zip (every record under one top folder, named after the file when it was saved —
// `jit.pt` has `jit/`; never assume `archive/`):
//   <top>/data.pkl             module tree (pickle protocol 2)
//   <top>/data/<key>           raw bytes of the storages data.pkl refers to
//   <top>/constants.pkl        tuple of constants; `CONSTANTS.cN` in the code is item N
//   <top>/constants/<key>      storages of constant tensors
//   <top>/code/**.py           printed TorchScript, one file per Python module
//   <top>/version              format version (torch 2.x: <top>/.data/version)
//
// Values in the module tree:
//   - A scripted class instance (a module) is an `Object`; `type_name` is the qualified class name
//     as the code names it ("__torch__.torch.nn.modules.linear.Linear", "__torch__.TestScript"),
//     `attrs` are its attributes in pickle order: parameters, buffers, submodules, `training`, and
//     plain attributes (int, float, bool, str, None, List, Tuple, Dict, Device). A class whose
//     state is not a dict (one with `__getstate__`) keeps the state as the attribute "__state__".
//   - Tensors are views of `Storage`s that point into the mapped archive: nothing is copied, one
//     Storage per record however many tensors share it, and sizes/strides/offsets are checked
//     against the storage, and each storage against its record, before any tensor exists.
//     The mapping is private and copy-on-write (see ZipReader::open): weights are never expected to
//     be written, but an in-place op on one changes a private page, not the file.
//   - Typed lists (`build_intlist` and friends) are plain Lists, `collections.OrderedDict` and
//     typed dicts are Dicts (insertion order kept), `torch.device(...)` is a Device.
//
// The pickles may name only the globals listed in archive.cpp (`__torch__.*` classes, tensor and
// storage rebuilding, typed containers, OrderedDict, torch.device); any other global is an error
// naming it. All errors name the archive path and the record.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/ivalue.h"
#include "runtime/tensor.h"
#include "runtime/torchscript/zip_reader.h"

namespace convoy {

struct Archive {
  std::string path;        // as given to load_archive (the name in errors)
  std::string top_folder;  // "jit" for jit.pt; record paths below are relative to it
  int64_t version = 0;     // file format version (torch 1.13 and 2.x write 3..10)

  IValue module;         // data.pkl: the root module, always an Object
  IValueList constants;  // constants.pkl: CONSTANTS.cN == constants[N]

  // code/**.py, keyed by path relative to the top folder ("code/__torch__.py",
  // "code/__torch__/torch/nn/modules/linear.py"). Debug tables (.debug_pkl) are not included.
  std::map<std::string, std::string> code;

  // Every storage a tensor refers to, keyed by record path relative to the top folder ("data/0",
  // "constants/1").
  std::map<std::string, std::shared_ptr<Storage>> storages;

  // The container; holding it (or any Storage) keeps the mapping alive.
  std::shared_ptr<ZipReader> zip;

  const Object& root() const { return *module.to_object(); }
  // The source of `relative_path` ("code/__torch__.py"), or nullptr.
  const std::string* find_code(const std::string& relative_path) const;
};

// Maps and loads the archive at `path`.
Archive load_archive(const std::string& path);
// Loads an archive from an opened zip (in-memory archives: tests and the fuzzer).
Archive load_archive(ZipReader zip);

// The largest format version this loader understands (the one torch's reader accepts, 0xA).
constexpr int64_t kMaxArchiveVersion = 10;

}  // namespace convoy
