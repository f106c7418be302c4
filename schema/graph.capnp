# The Graph IR on the wire: a stage's subgraph is shipped to a worker in this form.
# Values are numbered; nodes refer to them by number. Round-trips losslessly with runtime/graph.
@0xce9986703f2aac3f;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("convoy::schema");

struct Graph {
  values @0 :List(Value);   # indexed by Value.id
  top @1 :Block;
}

struct Value {
  id @0 :UInt32;
  type @1 :Type;
  name @2 :Text;
}

struct Type {
  kind @0 :Kind;
  contained @1 :List(Type);
  dtype @2 :Int8 = -1;        # PyTorch ScalarType code; -1: unknown
  hasShape @3 :Bool;
  shape @4 :List(Int64);      # -1 for an unknown dim

  enum Kind {
    tensor @0; int @1; float @2; bool @3; number @4; none @5; string @6; device @7;
    list @8; tuple @9; optional @10; dict @11; any @12;
  }
}

struct Block {
  params @0 :List(UInt32);
  nodes @1 :List(Node);
  returns @2 :List(UInt32);
}

struct Node {
  kind @0 :Text;              # "aten::linear"
  overload @1 :Text;          # "Tensor"; empty for the default overload or a structural prim
  inputs @2 :List(UInt32);
  outputs @3 :List(UInt32);
  blocks @4 :List(Block);
  constant @5 :Constant;      # prim::Constant only
  sourceFile @6 :Text;
  sourceLine @7 :UInt32;
}

struct Constant {
  union {
    none @0 :Void;
    bool @1 :Bool;
    int @2 :Int64;
    float @3 :Float64;
    string @4 :Text;
    tensor @5 :TensorData;
    list @6 :List(Constant);
    tuple @7 :List(Constant);
    device @8 :Text;
  }
}

struct TensorData {
  dtype @0 :Int8;             # PyTorch ScalarType code
  shape @1 :List(Int64);
  # Contiguous little-endian bytes. Weights may instead be sent once and referred to by the
  # SHA-256 of their bytes (contentHash), so a re-assigned model is not re-sent.
  data @2 :Data;
  contentHash @3 :Data;
}
