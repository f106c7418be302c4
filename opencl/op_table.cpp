#include "opencl/op_context.h"

namespace convoy::opencl {

void OpenCLOpTable::add(const std::string& full_name, OpenCLOp op) {
  CONVOY_ASSERT(!ops_.count(full_name), "OpenCL op ", full_name, " registered twice");
  ops_.emplace(full_name, std::move(op));
}

const OpenCLOp* OpenCLOpTable::find(const std::string& full_name) const {
  auto it = ops_.find(full_name);
  return it == ops_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpenCLOpTable::names() const {
  std::vector<std::string> out;
  for (const auto& [name, op] : ops_) out.push_back(name);
  return out;
}

OpenCLOpTable make_opencl_op_table() {
  OpenCLOpTable table;
  register_opencl_view_ops(table);
  register_opencl_elementwise_ops(table);
  register_opencl_reduction_ops(table);
  register_opencl_shape_ops(table);
  register_opencl_factory_ops(table);
  register_opencl_nn_ops(table);
  register_opencl_upsample_ops(table);
  register_opencl_linalg_ops(table);
  register_opencl_sequence_ops(table);
  return table;
}

}  // namespace convoy::opencl
