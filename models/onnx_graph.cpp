#include "models/onnx_graph.h"

#include <ATen/ops/contiguous.h>
#include <c10/util/Exception.h>

namespace vit::onnx_graph {
namespace {

void set_dims(onnx::ValueInfoProto& value, const std::vector<Dim>& dims) {
  auto* tensor = value.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* shape = tensor->mutable_shape();
  for (const auto& dim : dims) {
    auto* d = shape->add_dim();
    if (const auto* size = std::get_if<int64_t>(&dim)) {
      d->set_dim_value(*size);
    } else {
      d->set_dim_param(std::get<std::string>(dim));
    }
  }
}

// One initializer per distinct constant: the first use of `value` names it (`prefix` and a running number) and
// `add` writes it; later uses get the same name.
template <typename Key, typename Add>
std::string constant(std::map<Key, std::string>& names, const Key& value, const char* prefix, const Add& add) {
  auto [it, inserted] = names.try_emplace(value);
  if (inserted) {
    it->second = prefix + std::to_string(names.size() - 1);
    add(it->second);
  }
  return it->second;
}

}  // namespace

std::string GraphBuilder::unique(const std::string& base) {
  const std::string name = scope_.empty() ? base : scope_ + "/" + base;
  const int n = used_names_[name]++;
  return n == 0 ? name : name + "_" + std::to_string(n);
}

void GraphBuilder::input(const std::string& name, const std::vector<Dim>& dims) {
  auto* value = graph_.add_input();
  value->set_name(name);
  set_dims(*value, dims);
}

void GraphBuilder::output(const std::string& value_name, const std::vector<Dim>& dims) {
  auto* value = graph_.add_output();
  value->set_name(value_name);
  set_dims(*value, dims);
}

onnx::TensorProto& GraphBuilder::add_initializer(const std::string& name, onnx::TensorProto_DataType type,
                                                 const std::vector<int64_t>& dims) {
  auto& tensor = *graph_.add_initializer();
  tensor.set_name(name);
  tensor.set_data_type(type);
  for (const int64_t d : dims) tensor.add_dims(d);
  return tensor;
}

std::string GraphBuilder::weight(const std::string& name, const at::Tensor& tensor) {
  TORCH_CHECK(tensor.scalar_type() == at::kFloat && tensor.device().is_cpu(), "ONNX export: '", name,
              "' must be a float32 CPU tensor");
  const auto data = tensor.contiguous();
  auto& proto = add_initializer(name, onnx::TensorProto_DataType_FLOAT, data.sizes().vec());
  // raw_data is little-endian, as the x86 and ARM machines LibTorch runs on.
  proto.set_raw_data(data.data_ptr(), static_cast<size_t>(data.numel()) * sizeof(float));
  return name;
}

std::string GraphBuilder::scalar(float value) {
  return constant(scalars_, value, "const_f", [&](const std::string& name) {
    add_initializer(name, onnx::TensorProto_DataType_FLOAT, {}).add_float_data(value);
  });
}

std::string GraphBuilder::index(int64_t value) {
  return constant(indices_, value, "const_i", [&](const std::string& name) {
    add_initializer(name, onnx::TensorProto_DataType_INT64, {}).add_int64_data(value);
  });
}

std::string GraphBuilder::ints(const std::vector<int64_t>& values) {
  return constant(int_lists_, values, "const_ints", [&](const std::string& name) {
    auto& tensor = add_initializer(name, onnx::TensorProto_DataType_INT64, {static_cast<int64_t>(values.size())});
    for (const int64_t v : values) tensor.add_int64_data(v);
  });
}

std::vector<std::string> GraphBuilder::ops(const std::string& type, const std::vector<std::string>& inputs,
                                           int outputs, const std::vector<Attribute>& attributes) {
  auto& node = *graph_.add_node();
  node.set_op_type(type);
  node.set_name(unique(type));
  for (const auto& input : inputs) node.add_input(input);
  std::vector<std::string> names;
  for (int i = 0; i < outputs; ++i) {
    names.push_back(outputs == 1 ? node.name() : node.name() + ":" + std::to_string(i));
    node.add_output(names.back());
  }
  for (const auto& attribute : attributes) {
    auto& a = *node.add_attribute();
    a.set_name(attribute.name);
    if (const auto* i = std::get_if<int64_t>(&attribute.value)) {
      a.set_type(onnx::AttributeProto_AttributeType_INT);
      a.set_i(*i);
    } else if (const auto* f = std::get_if<float>(&attribute.value)) {
      a.set_type(onnx::AttributeProto_AttributeType_FLOAT);
      a.set_f(*f);
    } else {
      a.set_type(onnx::AttributeProto_AttributeType_INTS);
      for (const int64_t v : std::get<std::vector<int64_t>>(attribute.value)) a.add_ints(v);
    }
  }
  return names;
}

std::string GraphBuilder::op(const std::string& type, const std::vector<std::string>& inputs,
                             const std::vector<Attribute>& attributes) {
  return ops(type, inputs, 1, attributes).front();
}

}  // namespace vit::onnx_graph
