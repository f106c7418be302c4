// Static types of IR values, and the type language of op schemas ("Tensor?", "int[2]", "Scalar").
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/tensor.h"

namespace convoy {

enum class TypeKind {
  kTensor,
  kInt,
  kFloat,
  kBool,
  kNumber,  // schema "Scalar": int, float or bool
  kNone,
  kString,
  kDevice,
  kList,      // contained[0] is the element type
  kTuple,     // contained are the element types
  kOptional,  // contained[0] | None
  kDict,      // contained = {key, value}
  kAny,       // schema "t", "Any", or not known
};

struct Type;
using TypePtr = std::shared_ptr<const Type>;

struct Type {
  TypeKind kind = TypeKind::kAny;
  std::vector<TypePtr> contained;
  // Tensor refinements, when known. A dim of -1 is unknown (e.g. the batch dim).
  std::optional<DType> dtype;
  std::optional<Shape> shape;

  static TypePtr tensor();
  static TypePtr tensor(std::optional<DType> dtype, std::optional<Shape> shape);
  static TypePtr integer();
  static TypePtr floating();
  static TypePtr boolean();
  static TypePtr number();
  static TypePtr none();
  static TypePtr string();
  static TypePtr device();
  static TypePtr any();
  static TypePtr list(TypePtr elem);
  static TypePtr tuple(std::vector<TypePtr> elems);
  static TypePtr optional(TypePtr elem);
  static TypePtr dict(TypePtr key, TypePtr value);

  bool is(TypeKind k) const { return kind == k; }
  const TypePtr& elem() const { return contained.at(0); }
  std::string str() const;  // "Tensor", "int[]", "(Tensor, int)", "Tensor?"
};

// Whether a value of type `actual` may be passed where `formal` is expected (schema matching):
// int → float and int/float/bool → Scalar are allowed, None → T?, List[T] → T[], a Tensor → Scalar
// is not. With allow_conversions=false only exact matches count (int→float and number→Scalar
// conversions are refused), which overload resolution tries first.
bool type_accepts(const Type& formal, const Type& actual, bool allow_conversions = true);

// Parses a TorchScript annotation or a schema type: "Tensor", "List[int]", "Optional[Tensor]",
// "Tuple[Tensor, Tensor]", "int[]", "Tensor?", "Dict[str, Tensor]". Throws naming the text.
TypePtr parse_type(const std::string& text);

}  // namespace convoy
