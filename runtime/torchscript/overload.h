// Overload resolution for lowering: which registered overload of an op accepts a call's argument
// types, how each schema argument is filled (a positional or keyword actual, or its default), and
// the static types of the results (schema type variables like `t` bound from the arguments).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/graph/type.h"
#include "runtime/ops/registry.h"

namespace convoy::lowering {

// Where a schema argument's value comes from.
struct ArgSource {
  enum Kind { kPositional, kKeyword, kDefault } kind = kDefault;
  size_t index = 0;            // into the positional or keyword actuals
  bool repeat_scalar = false;  // "int[2]" given one int: build a list of fixed_list_size copies
};

struct OverloadMatch {
  const OpOverload* op = nullptr;
  std::vector<ArgSource> sources;  // one per schema argument
  std::vector<TypePtr> arg_types;  // the static type each schema argument receives
  int conversions = 0;             // int->float, number->Scalar, int->int[N]
};

// Tries one schema against the call. `allow_conversions` false demands exact types.
std::optional<OverloadMatch> match_schema(const OpOverload& op, const std::vector<TypePtr>& positional,
                                          const std::vector<std::pair<std::string, TypePtr>>& keywords,
                                          bool allow_conversions);

// Picks the first overload (in registration order) that matches without conversions, else the
// first that matches with them. Returns nullopt when none does; `candidates` then lists the
// schemas that were tried, for the error message.
std::optional<OverloadMatch> resolve_overload(const std::vector<const OpOverload*>& overloads,
                                              const std::vector<TypePtr>& positional,
                                              const std::vector<std::pair<std::string, TypePtr>>& keywords);

// The result types of a matched call from its schema, with type variables (`t`, `t1`, `tVal`)
// bound from the argument types: `aten::__getitem__.t(t[] list, int idx) -> t` on an int[] is int.
std::vector<TypePtr> schema_result_types(const OverloadMatch& match);

// "(Tensor, int, str)" plus ", dim=int" for keywords: for error messages.
std::string describe_call_types(const std::vector<TypePtr>& positional,
                                const std::vector<std::pair<std::string, TypePtr>>& keywords);

}  // namespace convoy::lowering
