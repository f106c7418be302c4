// A pickle virtual machine for the pickles inside TorchScript archives (`data.pkl`, `constants.pkl`):
// protocol 2 and the protocol 0/1 opcodes it builds on, plus the few protocol 3/4 opcodes that only
// frame or memoise (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL, ...).
//
// It never imports or executes anything. Every GLOBAL is checked against the caller's allow-list
// (a refused one is an error naming it), and what a global means — a class to instantiate, a
// function to call, a plain value — is decided by the caller's hooks. Errors name the pickle and
// the byte offset of the opcode that failed.
//
// Hostile input is expected: lengths are checked against the remaining bytes, integers wider than
// 64 bits are refused, nesting is limited (kMaxNesting), self-referencing containers are refused,
// and memo copies of strings are budgeted, so a small pickle can neither exhaust memory nor
// overflow the stack.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "runtime/ivalue.h"

namespace convoy {

// A GLOBAL opcode's operand: `module` and `name` as in `c<module>\n<name>\n`.
struct PickleGlobal {
  std::string module;
  std::string name;
  std::string qualified() const { return module + "." + name; }  // "torch._utils._rebuild_tensor_v2"
};

struct UnpicklerHooks {
  // Whether GLOBAL `module name` may appear at all; the VM refuses every other global with
  // "<source>: global '<module>.<name>' is not allowed". Required.
  std::function<bool(const PickleGlobal&)> allow_global;
  // REDUCE: the result of calling `global(*args)`.
  std::function<IValue(const PickleGlobal&, IValueList& args)> call;
  // NEWOBJ (and INST/OBJ): a new instance of class `global` built from `args`.
  std::function<IValue(const PickleGlobal&, IValueList& args)> new_object;
  // BUILD: applies `state` to `object` (what `__setstate__` would do); returns the built object.
  std::function<IValue(IValue object, IValue state)> build;
  // A global used as a plain value (put in a tuple, list, dict, or passed as an argument): what
  // it stands for, e.g. the storage class inside a tensor's persistent id.
  std::function<IValue(const PickleGlobal&)> global_value;
  // BINPERSID/PERSID: the object a persistent id refers to (PERSID passes its id as a string).
  std::function<IValue(const IValue& pid)> persistent_load;
};
// A missing optional hook makes the corresponding opcode an error naming the global or opcode.

// Deepest nesting of lists, tuples, dicts and objects accepted in one pickle. Module trees of real
// models are a few dozen levels deep; the limit keeps recursive walks of the result (printing,
// destruction) far from the end of the stack.
constexpr int kMaxPickleNesting = 1000;

// Runs the pickle in `bytes` and returns the value STOP leaves. `source` names the pickle in every
// error, e.g. "model.pt: jit/data.pkl". Errors thrown by hooks are rethrown with the source, the
// byte offset and the opcode prepended.
IValue unpickle(std::string_view bytes, const std::string& source, const UnpicklerHooks& hooks);

}  // namespace convoy
