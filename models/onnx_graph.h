#pragma once
// A small builder for ONNX graphs: constants, weights and nodes with unique names, so that the exporter
// (onnx_export.cpp) reads as the model's forward pass. Includes ONNX's protobuf header: only the exporter's own
// units include this file.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <onnx/onnx_pb.h>

namespace vit::onnx_graph {

// A node attribute: an integer, a float or a list of integers (all the exporter needs).
struct Attribute {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>> value;
};

// A dimension of a graph input or output: a size, or the name of a symbolic one ("batch").
using Dim = std::variant<int64_t, std::string>;

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // Names of the nodes and values made from now on start with `scope` ("blocks.3.attn"), as a viewer such as
  // Netron then shows where each node comes from.
  void set_scope(std::string scope) { scope_ = std::move(scope); }

  void input(const std::string& name, const std::vector<Dim>& dims);
  void output(const std::string& value, const std::vector<Dim>& dims);

  // A float32 initializer holding `tensor` (copied, contiguous, little-endian), under `name`.
  std::string weight(const std::string& name, const at::Tensor& tensor);
  // Constants, one initializer per distinct value: a float scalar, an int64 scalar (a Gather index) and a 1-D
  // int64 tensor (shapes, axes, sizes).
  std::string scalar(float value);
  std::string index(int64_t value);
  std::string ints(const std::vector<int64_t>& values);

  // Adds a node; returns its output(s).
  std::string op(const std::string& type, const std::vector<std::string>& inputs,
                 const std::vector<Attribute>& attributes = {});
  std::vector<std::string> ops(const std::string& type, const std::vector<std::string>& inputs, int outputs,
                               const std::vector<Attribute>& attributes = {});

 private:
  std::string unique(const std::string& base);
  onnx::TensorProto& add_initializer(const std::string& name, onnx::TensorProto_DataType type,
                                     const std::vector<int64_t>& dims);

  onnx::GraphProto& graph_;
  std::string scope_;
  std::map<std::string, int> used_names_;
  std::map<float, std::string> scalars_;
  std::map<int64_t, std::string> indices_;
  std::map<std::vector<int64_t>, std::string> int_lists_;
};

}  // namespace vit::onnx_graph
