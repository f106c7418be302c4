# Control and data messages between the CLI, the coordinator and the workers (docs/distributed.md).
#
# Every ZeroMQ message is a multipart: frame 0 is one `Envelope` (a flat, unpacked Cap'n Proto
# message), frames 1..n are raw tensor bytes, contiguous and little-endian, in the order of the
# `TensorMeta` list the envelope's body names. Tensor bytes are never re-encoded into Cap'n Proto.
#
# Sockets: workers' control DEALER and clients' DEALER → coordinator ROUTER; each worker binds a data
# ROUTER that upstream stages (and the coordinator, for stage 0) connect DEALERs to. The first message
# a peer sends on a connection is `hello`; anything else from an unknown peer is refused.
#
# Every socket runs CurveZMQ (docs/security.md): the coordinator's ROUTER and each worker's data ROUTER
# are CURVE servers whose ZAP handler admits only allow-listed public keys; the sender's key comes with
# each message and decides what it may do. Only an explicit `insecure: true` runs them in plain text.
@0xb4f1c2a9d0e35f17;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("convoy::schema");

using Graph = import "graph.capnp".Graph;

struct Envelope {
  # Echoed in the reply so a client can match answers to requests; 0 for unsolicited messages.
  requestId @0 :UInt64;
  body :union {
    hello @1 :Hello;
    helloReply @2 :HelloReply;
    error @3 :ErrorReply;
    register @4 :Register;
    registered @5 :Registered;
    heartbeat @6 :Heartbeat;
    deregister @7 :Deregister;
    assignStage @8 :AssignStage;
    stageReady @9 :StageReady;
    releaseStage @10 :ReleaseStage;
    microBatch @11 :MicroBatch;
    result @12 :Result;
    stageFailed @13 :StageFailed;
    submitJob @14 :SubmitJob;
    submitted @15 :Submitted;
    statusRequest @16 :StatusRequest;
    statusReply @17 :StatusReply;
    cancel @18 :Cancel;
    cancelled @19 :Cancelled;
    workersRequest @20 :WorkersRequest;
    workersReply @21 :WorkersReply;
    planRequest @22 :PlanRequest;
    planReply @23 :PlanReply;
  }
}

# --- handshake ------------------------------------------------------------------------------------

enum Role {
  client @0;    # the CLI
  worker @1;    # a worker's control connection
  upstream @2;  # a data connection from the coordinator or a previous stage
}

struct Hello {
  protocolVersion @0 :UInt32;
  opsetHash @1 :UInt64;      # of the op registry's schemas: both ends must run the same ops
  role @2 :Role;
  name @3 :Text;             # "host:pid" of the sender, for logs
}

struct HelloReply {
  protocolVersion @0 :UInt32;
  opsetHash @1 :UInt64;
  name @2 :Text;
}

struct ErrorReply {
  kind @0 :Kind;
  message @1 :Text;          # one line that names the file, field, op or job at fault
  enum Kind {
    badRequest @0;           # the request is wrong: fix it, do not retry
    versionMismatch @1;      # protocol version or op set differ: upgrade one side
    notFound @2;             # no such job / stage / worker
    retryLater @3;           # busy or not ready (no workers yet): retry after a while
    internal @4;             # a bug or an I/O failure on the replying side
    missingWeights @5;       # AssignStage named weights the worker does not have: resend them
    refused @6;              # the sender has not said hello, or was told to go away
  }
}

# --- workers --------------------------------------------------------------------------------------

struct DeviceInfo {
  index @0 :UInt32;          # OpenCL device index on the worker (convoy-worker --list-devices)
  name @1 :Text;
  backend @2 :Text;          # "opencl" or "reference"
  memoryBytes @3 :UInt64;
  computeUnits @4 :UInt32;
  gemmGflops @5 :Float64;    # measured: SGEMM through the dispatcher
  copyGbps @6 :Float64;      # measured: host↔device copy bandwidth
  processor @7 :Text;        # devices with the same key share one physical processor
}

struct Register {
  workerName @0 :Text;       # unique per worker ("host:pid" unless configured)
  host @1 :Text;
  pid @2 :UInt32;
  dataEndpoint @3 :Text;     # "tcp://127.0.0.1:40123": where upstream stages send micro-batches
  devices @4 :List(DeviceInfo);
  cachedWeights @5 :List(Data);  # SHA-256 of weights already in its cache
  threads @6 :UInt32;        # compute threads the worker uses
}

struct Registered {
  workerId @0 :UInt32;
  heartbeatMs @1 :UInt32;    # send a heartbeat at least this often
  maxMessageBytes @2 :UInt64;  # the largest message the coordinator takes (a bigger result fails its
                               # micro-batch with a message instead of cutting the connection)
}

struct Heartbeat {
  workerId @0 :UInt32;
  queued @1 :UInt32;         # micro-batches waiting for the compute thread
  busySeconds @2 :Float64;   # compute time since start
  rssBytes @3 :UInt64;
}

struct Deregister {
  workerId @0 :UInt32;
  reason @1 :Text;
}

struct WeightRef {
  valueId @0 :UInt32;        # the prim::Constant output in `graph` the weight belongs to
  hash @1 :Data;             # SHA-256 of its bytes
  dtype @2 :Int8;
  shape @3 :List(Int64);
  frame @4 :Int32 = -1;      # index of the tensor frame carrying the bytes (0 = frame 1), -1: not sent
}

struct Route {
  endpoints @0 :List(Text);  # next stage's replicas' data endpoints; empty: send Results to the coordinator
  keys @1 :List(Text);       # their workers' CURVE public keys (Z85), one per endpoint; empty: insecure
}

struct AssignStage {
  job @0 :UInt64;
  pipeline @1 :UInt32;
  stage @2 :UInt32;
  replica @3 :UInt32;
  device @4 :UInt32;         # DeviceInfo.index
  backend @5 :Text;          # "opencl" or "reference"
  graph @6 :Graph;           # the stage's subgraph; tensor constants carry contentHash, no data
  weights @7 :List(WeightRef);
  next @8 :Route;
  warmShapes @9 :List(TensorMeta);   # a full micro-batch's inputs: the stage compiles and warms on them
  upstreamKeys @10 :List(Text);      # CURVE public keys (Z85) that may send this stage micro-batches:
                                     # the previous stage's workers, or the coordinator for stage 0
}

struct StageReady {
  job @0 :UInt64;
  pipeline @1 :UInt32;
  stage @2 :UInt32;
  replica @3 :UInt32;
  compileSeconds @4 :Float64;
  weightBytesReceived @5 :UInt64;
  cachedWeights @6 :List(Data);      # the worker's whole weight cache after this assignment
}

struct ReleaseStage {
  job @0 :UInt64;            # the job is over (done, failed, cancelled): free its stages
}

# --- data plane -----------------------------------------------------------------------------------

struct TensorMeta {
  dtype @0 :Int8;            # PyTorch ScalarType code
  shape @1 :List(Int64);
  bytes @2 :UInt64;          # must equal the frame's length and dtype size × shape
}

struct MicroBatch {
  job @0 :UInt64;
  pipeline @1 :UInt32;
  seq @2 :UInt64;            # micro-batch number in the job
  stage @3 :UInt32;          # the stage this batch is addressed to
  tensors @4 :List(TensorMeta);      # the stage's inputs, one frame each
  stageSeconds @5 :List(Float64);    # measured compute time of each stage so far
  route @6 :List(UInt32);            # the replica of each stage it goes through, chosen by the
                                     # coordinator by credit (absent: seq mod the replica count)
}

struct Result {
  job @0 :UInt64;
  pipeline @1 :UInt32;
  seq @2 :UInt64;
  tensors @3 :List(TensorMeta);      # the model's outputs for the micro-batch, one frame each
  stageSeconds @4 :List(Float64);
}

struct StageFailed {
  job @0 :UInt64;
  pipeline @1 :UInt32;
  stage @2 :UInt32;
  seq @3 :UInt64;            # the micro-batch that failed (or ~0 for a failed assignment)
  message @4 :Text;
  kind @5 :Kind;             # what the coordinator should do about it
  enum Kind {
    unknown @0;              # an older worker: treated as transient
    badInput @1;             # the micro-batch or the stage's graph is wrong for it: fail the job, do not retry
    device @2;               # the device or its memory failed: replay on a new plan
    transport @3;            # a next stage unreachable or a message damaged on the way: replay
    internal @4;             # a broken invariant in the worker: fail the job, a replay would repeat it
  }
  unreachable @6 :Text;      # transport: the next stage's data endpoint that did not answer ("" if none)
}

# --- clients --------------------------------------------------------------------------------------

struct SubmitJob {
  jobFile @0 :Text;          # for messages
  model @1 :Text;            # absolute paths, resolved by the submitter against the job file's folder
  inputs @2 :List(Text);
  output @3 :Text;
  batchSize @4 :Int64;
  name @5 :Text;
  backend @6 :Text;          # "" = the cluster's default
  maxWorkers @7 :UInt32;     # the most workers the job may hold at once; 0 = the cluster's job_workers
  overwrite @8 :Bool;        # replace output_K.npy files that exist already (otherwise refused)
}

struct Submitted {
  job @0 :UInt64;
}

struct StatusRequest {
  job @0 :UInt64;            # 0: every job
}

struct StageReport {
  stage @0 :UInt32;
  workers @1 :List(Text);
  firstOp @2 :Text;
  lastOp @3 :Text;
  predictedSeconds @4 :Float64;      # per micro-batch
  measuredSeconds @5 :Float64;       # mean so far; 0 before the first
}

struct JobStatus {
  job @0 :UInt64;
  name @1 :Text;
  state @2 :State;
  samplesDone @3 :Int64;
  samplesTotal @4 :Int64;
  microBatchesDone @5 :Int64;
  microBatchesTotal @6 :Int64;
  samplesPerSecond @7 :Float64;
  elapsedSeconds @8 :Float64;
  error @9 :Text;
  output @10 :Text;
  stages @11 :List(StageReport);
  redacted @12 :Bool;        # another client's job: only its id, state and progress are shown
  owner @13 :Text;           # the submitting key's allow-list name ("" when insecure)
  enum State { queued @0; planning @1; running @2; done @3; failed @4; cancelled @5; }
}

struct StatusReply {
  jobs @0 :List(JobStatus);
}

struct Cancel {
  job @0 :UInt64;
}

struct Cancelled {
  job @0 :UInt64;
}

struct WorkersRequest {}

struct WorkerStatus {
  workerId @0 :UInt32;
  name @1 :Text;
  host @2 :Text;
  dataEndpoint @3 :Text;
  devices @4 :List(DeviceInfo);
  lastHeartbeatMs @5 :UInt64;        # ms since the last heartbeat
  busySeconds @6 :Float64;
  rssBytes @7 :UInt64;
  stages @8 :List(Text);             # "job 3 stage 1"
  key @9 :Text;                      # its CURVE public key (Z85; "" when insecure)
}

struct WorkersReply {
  workers @0 :List(WorkerStatus);
}

struct PlanRequest {
  job @0 :SubmitJob;         # planned against the workers registered now; nothing runs
}

struct PlanReply {
  text @0 :Text;             # the plan printer's table
}
