#include "models/onnx_export.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/zeros.h>
#include <torch/types.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "models/onnx_graph.h"
#include "util/atomic_file.h"
#include "util/files.h"

namespace vit {
namespace {

namespace fs = std::filesystem;
using onnx_graph::Attribute;
using onnx_graph::Dim;
using onnx_graph::GraphBuilder;

// Writes the model's forward pass (eval mode: every dropout, stochastic depth and PatchDropout is off) as ONNX
// nodes, reading the weights by timm's names. Shapes other than the batch are constants of the architecture, so
// Reshape's targets are constants with 0 ("copy this dimension") for the batch.
class ViTGraphWriter {
 public:
  ViTGraphWriter(GraphBuilder& g, const ViTConfig& config, const std::map<std::string, at::Tensor>& tensors,
                 int opset)
      : g_(g), c_(config), tensors_(tensors), opset_(opset) {}

  // images (B, C, H, W) -> the model's output.
  std::string forward(const std::string& images) {
    auto x = patch_embed(images);
    x = prefix_and_position(x);
    if (c_.pre_norm) x = norm(x, "norm_pre");
    for (int64_t i = 0; i < c_.depth; ++i) x = block(x, "blocks." + std::to_string(i));
    g_.set_scope("");
    if (c_.has_norm()) x = norm(x, "norm");
    return head(x);
  }

 private:
  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  const at::Tensor& tensor(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::logic_error("ONNX export: the model has no tensor '" + name + "'");
    return it->second;
  }
  std::string weight(const std::string& name) { return g_.weight(name, tensor(name)); }

  // y = x W^T + b, with W^T stored transposed ("<name>.T", (in, out)) so that one MatMul does it for any rank.
  std::string linear(const std::string& x, const std::string& prefix) {
    auto y = g_.op("MatMul", {x, g_.weight(prefix + ".weight.T", tensor(prefix + ".weight").t())});
    return has(prefix + ".bias") ? g_.op("Add", {y, weight(prefix + ".bias")}) : y;
  }

  // LayerNorm or RMSNorm over the last dimension. LayerNormalization exists from opset 17; below, and for
  // RMSNorm (an operator only from opset 23), it is spelled out as the model computes it.
  std::string norm(const std::string& x, const std::string& prefix) {
    const auto eps = [&] { return g_.scalar(static_cast<float>(c_.norm_eps)); };
    const std::vector<Attribute> last_axis{{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{1}}};
    if (c_.norm_layer == NormLayer::RmsNorm) {
      const auto mean_square = g_.op("ReduceMean", {g_.op("Mul", {x, x})}, last_axis);
      const auto y = g_.op("Div", {x, g_.op("Sqrt", {g_.op("Add", {mean_square, eps()})})});
      return g_.op("Mul", {y, weight(prefix + ".weight")});
    }
    if (opset_ >= 17)
      return g_.op("LayerNormalization", {x, weight(prefix + ".weight"), weight(prefix + ".bias")},
                   {{"axis", int64_t{-1}}, {"epsilon", static_cast<float>(c_.norm_eps)}});
    const auto centred = g_.op("Sub", {x, g_.op("ReduceMean", {x}, last_axis)});
    const auto variance = g_.op("ReduceMean", {g_.op("Mul", {centred, centred})}, last_axis);
    const auto y = g_.op("Div", {centred, g_.op("Sqrt", {g_.op("Add", {variance, eps()})})});
    return g_.op("Add", {g_.op("Mul", {y, weight(prefix + ".weight")}), weight(prefix + ".bias")});
  }

  // ONNX has no GELU before opset 20: each activation in the form ONNX Runtime's optimiser recognises and fuses.
  std::string activation(const std::string& x) {
    switch (c_.act_layer) {
      case Activation::Gelu: {  // x * 0.5 * (1 + erf(x / sqrt(2)))
        const auto erf = g_.op("Erf", {g_.op("Div", {x, g_.scalar(static_cast<float>(std::sqrt(2.0)))})});
        return g_.op("Mul", {g_.op("Mul", {x, g_.op("Add", {erf, g_.scalar(1.0f)})}), g_.scalar(0.5f)});
      }
      case Activation::GeluTanh: {  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        const auto cube = g_.op("Mul", {g_.op("Mul", {x, x}), x});
        const auto inner = g_.op("Add", {x, g_.op("Mul", {cube, g_.scalar(0.044715f)})});
        const auto tanh = g_.op("Tanh", {g_.op("Mul", {inner, g_.scalar(static_cast<float>(std::sqrt(2.0 / 3.14159265358979323846)))})});
        return g_.op("Mul", {g_.op("Mul", {x, g_.scalar(0.5f)}), g_.op("Add", {tanh, g_.scalar(1.0f)})});
      }
      case Activation::QuickGelu:  // x * sigmoid(1.702 x)
        return g_.op("Mul", {x, g_.op("Sigmoid", {g_.op("Mul", {x, g_.scalar(1.702f)})})});
      case Activation::Silu:
        return g_.op("Mul", {x, g_.op("Sigmoid", {x})});
    }
    throw std::logic_error("unknown activation");
  }

  // (B, C, H, W) -> (B, N, D): the strided convolution, its grid flattened, then the optional norm.
  std::string patch_embed(const std::string& images) {
    g_.set_scope("patch_embed");
    std::vector<std::string> inputs{images, weight("patch_embed.proj.weight")};
    if (has("patch_embed.proj.bias")) inputs.push_back(weight("patch_embed.proj.bias"));
    const int64_t p = c_.patch_size;
    auto x = g_.op("Conv", inputs, {{"kernel_shape", std::vector<int64_t>{p, p}}, {"strides", std::vector<int64_t>{p, p}}});
    x = g_.op("Reshape", {x, g_.ints({0, c_.embed_dim, c_.num_patches()})});
    x = g_.op("Transpose", {x}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
    return c_.embed_norm ? norm(x, "patch_embed.norm") : x;
  }

  // The prefix tokens (class, distillation, registers) and the position embedding in one constant: the patch
  // tokens are padded with zero rows where the prefix goes, then the constant is added. The same sums as the
  // model's concatenation and addition, without Shape/Expand nodes for the batch, which simple runtimes handle
  // poorly.
  std::string prefix_and_position(const std::string& x) {
    g_.set_scope("embeddings");
    const int64_t prefix = c_.num_prefix_tokens();
    const int64_t d = c_.embed_dim;
    std::vector<at::Tensor> prefix_tokens;
    if (c_.class_token) prefix_tokens.push_back(tensor("cls_token"));
    if (c_.dist_token != DistToken::None) prefix_tokens.push_back(tensor("dist_token"));
    if (c_.reg_tokens > 0) prefix_tokens.push_back(tensor("reg_token"));
    const bool position = c_.pos_embed != PosEmbed::None;
    if (prefix == 0 && !position) return x;
    torch::NoGradGuard no_grad;
    // (1, T, D): the prefix tokens, then zeros for the patches; plus the position embedding where it applies
    // (all T tokens, or with no_embed_class only the patches).
    prefix_tokens.push_back(at::zeros({1, c_.num_patches(), d}));
    auto added = at::cat(prefix_tokens, 1);
    if (position) {
      const auto& pos = tensor("pos_embed");
      added.narrow(1, prefix - c_.pos_embed_prefix_tokens(), pos.size(1)).add_(pos);
    }
    auto y = x;
    if (prefix > 0) y = g_.op("Pad", {y, g_.ints({0, prefix, 0, 0, 0, 0})});  // zeros before the patches
    return g_.op("Add", {y, g_.weight("prefix_tokens+pos_embed", added)});
  }

  // (B, N, H * Dh) -> (B, H, N, Dh)
  std::string split_heads(const std::string& x, int64_t tokens) {
    const auto y = g_.op("Reshape", {x, g_.ints({0, tokens, c_.num_heads, c_.head_dim()})});
    return g_.op("Transpose", {y}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  }

  // (B, N, count * D) packed as (count, H, Dh) per token -> `count` tensors (B, H, N, Dh): timm's qkv / kv.
  std::vector<std::string> unpack_heads(const std::string& packed, int64_t tokens, int64_t count) {
    auto y = g_.op("Reshape", {packed, g_.ints({0, tokens, count, c_.num_heads, c_.head_dim()})});
    y = g_.op("Transpose", {y}, {{"perm", std::vector<int64_t>{2, 0, 3, 1, 4}}});  // (count, B, H, N, Dh)
    std::vector<std::string> parts;
    for (int64_t i = 0; i < count; ++i) parts.push_back(g_.op("Gather", {y, g_.index(i)}, {{"axis", int64_t{0}}}));
    return parts;
  }

  // softmax(q k^T / sqrt(Dh)) v over (B, H, N, Dh) -> (B, Nq, D).
  std::string attend(const std::string& q, const std::string& k, const std::string& v, int64_t query_tokens) {
    const auto scaled = g_.op("Mul", {q, g_.scalar(static_cast<float>(1.0 / std::sqrt(double(c_.head_dim()))))});
    const auto kt = g_.op("Transpose", {k}, {{"perm", std::vector<int64_t>{0, 1, 3, 2}}});
    const auto probs = g_.op("Softmax", {g_.op("MatMul", {scaled, kt})}, {{"axis", int64_t{-1}}});
    auto out = g_.op("MatMul", {probs, v});
    out = g_.op("Transpose", {out}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
    return g_.op("Reshape", {out, g_.ints({0, query_tokens, c_.embed_dim})});
  }

  std::string qk_normed(const std::string& x, const std::string& norm_prefix) {
    return c_.qk_norm ? norm(x, norm_prefix) : x;
  }

  std::string self_attention(const std::string& x, const std::string& prefix) {
    const int64_t tokens = c_.sequence_length();
    const auto qkv = unpack_heads(linear(x, prefix + ".qkv"), tokens, 3);
    auto out = attend(qk_normed(qkv[0], prefix + ".q_norm"), qk_normed(qkv[1], prefix + ".k_norm"), qkv[2], tokens);
    if (c_.scale_attn_norm) out = norm(out, prefix + ".norm");
    return linear(out, prefix + ".proj");
  }

  std::string mlp(const std::string& x, const std::string& prefix, MlpLayer kind, bool hidden_norm) {
    std::string hidden;
    switch (kind) {
      case MlpLayer::Mlp:
        hidden = activation(linear(x, prefix + ".fc1"));
        break;
      case MlpLayer::SwiGlu:
        hidden = g_.op("Mul", {activation(linear(x, prefix + ".fc1_g")), linear(x, prefix + ".fc1_x")});
        break;
      case MlpLayer::SwiGluPacked: {  // fc1's first half is the gate
        const int64_t half = c_.mlp_inner_dim();
        const auto halves = g_.ops("Split", {linear(x, prefix + ".fc1"), g_.ints({half, half})}, 2, {{"axis", int64_t{-1}}});
        hidden = g_.op("Mul", {activation(halves[0]), halves[1]});
        break;
      }
    }
    if (hidden_norm) hidden = norm(hidden, prefix + ".norm");
    return linear(hidden, prefix + ".fc2");
  }

  std::string layer_scale(const std::string& x, const std::string& name) {
    return has(name + ".gamma") ? g_.op("Mul", {x, weight(name + ".gamma")}) : x;
  }

  std::string block(const std::string& x, const std::string& prefix) {
    g_.set_scope(prefix);
    switch (c_.block_fn) {
      case BlockFn::Block: {
        auto branch = layer_scale(self_attention(norm(x, prefix + ".norm1"), prefix + ".attn"), prefix + ".ls1");
        const auto y = g_.op("Add", {x, branch});
        branch = layer_scale(mlp(norm(y, prefix + ".norm2"), prefix + ".mlp", c_.mlp_layer, c_.scale_mlp_norm),
                             prefix + ".ls2");
        return g_.op("Add", {y, branch});
      }
      case BlockFn::ResPost: {
        const auto y = g_.op("Add", {x, norm(self_attention(x, prefix + ".attn"), prefix + ".norm1")});
        return g_.op("Add", {y, norm(mlp(y, prefix + ".mlp", c_.mlp_layer, c_.scale_mlp_norm), prefix + ".norm2")});
      }
      case BlockFn::ParallelThings: {
        auto sum = [&](const std::string& input, const std::string& kind) {
          std::string total = input;
          for (int branch = 0; branch < 2; ++branch) {
            const std::string name = prefix + "." + kind + "." + std::to_string(branch);
            const auto normed = norm(input, name + ".norm");
            const auto y = kind == "attns" ? self_attention(normed, name + ".attn")
                                           : mlp(normed, name + ".mlp", c_.mlp_layer, c_.scale_mlp_norm);
            total = g_.op("Add", {total, layer_scale(y, name + ".ls")});
          }
          return total;
        };
        return sum(sum(x, "attns"), "ffns");
      }
      case BlockFn::ParallelScaling:
        return parallel_scaling_block(x, prefix);
    }
    throw std::logic_error("unknown block_fn");
  }

  // ViT-22B's block: in_proj(in_norm(x)) split into the MLP's input and q, k, v.
  std::string parallel_scaling_block(const std::string& x, const std::string& prefix) {
    const int64_t tokens = c_.sequence_length();
    const int64_t d = c_.embed_dim;
    const int64_t hidden = c_.mlp_hidden_dim();
    const auto projected = linear(norm(x, prefix + ".in_norm"), prefix + ".in_proj");
    const auto parts = g_.ops("Split", {projected, g_.ints({hidden, d, d, d})}, 4, {{"axis", int64_t{-1}}});
    const auto q = qk_normed(split_heads(parts[1], tokens), prefix + ".q_norm");
    const auto k = qk_normed(split_heads(parts[2], tokens), prefix + ".k_norm");
    const auto attended = attend(q, k, split_heads(parts[3], tokens), tokens);
    auto mlp_in = parts[0];
    if (has(prefix + ".mlp_bias")) mlp_in = g_.op("Add", {mlp_in, weight(prefix + ".mlp_bias")});
    const auto y = g_.op("Add", {linear(attended, prefix + ".attn_out_proj"),
                                 linear(activation(mlp_in), prefix + ".mlp_out_proj")});
    return g_.op("Add", {x, layer_scale(y, prefix + ".ls")});
  }

  // timm's AttentionPoolLatent: the learned query does not depend on the image, so its projection is computed
  // here, once, as a constant (1, H, 1, Dh).
  std::string attention_pool(const std::string& tokens, int64_t count) {
    g_.set_scope("attn_pool");
    torch::NoGradGuard no_grad;
    const auto q = at::linear(tensor("attn_pool.latent"), tensor("attn_pool.q.weight"), tensor("attn_pool.q.bias"))
                       .reshape({1, 1, c_.num_heads, c_.head_dim()})
                       .transpose(1, 2);
    const auto kv = unpack_heads(linear(tokens, "attn_pool.kv"), count, 2);
    auto x = linear(attend(g_.weight("attn_pool.q(latent)", q), kv[0], kv[1], 1), "attn_pool.proj");
    x = g_.op("Add", {x, mlp(norm(x, "attn_pool.norm"), "attn_pool.mlp", MlpLayer::Mlp, false)});
    return g_.op("Gather", {x, g_.index(0)}, {{"axis", int64_t{1}}});  // (B, D)
  }

  std::string head(const std::string& x) {
    g_.set_scope("head");
    const auto token = [&](int64_t i) { return g_.op("Gather", {x, g_.index(i)}, {{"axis", int64_t{1}}}); };
    if (c_.dist_token == DistToken::Heads) {  // timm's VisionTransformerDistilled: the two tokens' heads, averaged
      const bool heads = c_.num_classes > 0;
      const auto cls = heads ? linear(token(0), "head") : token(0);
      const auto dist = heads ? linear(token(1), "head_dist") : token(1);
      return g_.op("Mul", {g_.op("Add", {cls, dist}), g_.scalar(0.5f)});
    }
    const int64_t skip = c_.pool_include_prefix ? 0 : c_.num_prefix_tokens();
    const auto pooled_tokens = [&] {
      if (skip == 0) return x;
      return g_.op("Slice", {x, g_.ints({skip}), g_.ints({std::numeric_limits<int64_t>::max()}), g_.ints({1})});
    };
    const std::vector<Attribute> over_tokens{{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}};
    std::string pooled;
    switch (c_.global_pool) {
      case GlobalPool::Token:
        pooled = token(0);
        break;
      case GlobalPool::Avg:
        pooled = g_.op("ReduceMean", {pooled_tokens()}, over_tokens);
        break;
      case GlobalPool::Max:
        pooled = g_.op("ReduceMax", {pooled_tokens()}, over_tokens);
        break;
      case GlobalPool::AvgMax: {
        const auto p = pooled_tokens();
        const auto sum = g_.op("Add", {g_.op("ReduceMean", {p}, over_tokens), g_.op("ReduceMax", {p}, over_tokens)});
        pooled = g_.op("Mul", {sum, g_.scalar(0.5f)});
        break;
      }
      case GlobalPool::Map:
        pooled = attention_pool(pooled_tokens(), c_.sequence_length() - skip);
        g_.set_scope("head");
        break;
      case GlobalPool::TokenAvg:
        pooled = g_.op("Concat", {token(0), g_.op("ReduceMean", {pooled_tokens()}, over_tokens)}, {{"axis", int64_t{-1}}});
        break;
      case GlobalPool::None:
        pooled = x;
        break;
    }
    if (c_.has_fc_norm()) pooled = norm(pooled, "fc_norm");
    return c_.num_classes > 0 ? linear(pooled, "head") : pooled;
  }

  GraphBuilder& g_;
  const ViTConfig& c_;
  const std::map<std::string, at::Tensor>& tensors_;
  int opset_;
};

}  // namespace

void validate_onnx_options(const OnnxExportOptions& options) {
  if (options.opset > kMaxOnnxOpset)
    throw std::invalid_argument("ONNX opset " + std::to_string(options.opset) + " is not available: vit writes ONNX " +
                                "with the ONNX 1.12 library, which knows opsets up to " +
                                std::to_string(kMaxOnnxOpset) + " (its checker would not catch a mistake above)");
  if (options.opset < kMinOnnxOpset)
    throw std::invalid_argument("ONNX opset " + std::to_string(options.opset) + " is too old: the export needs " +
                                std::to_string(kMinOnnxOpset) + " or newer (Softmax over one axis, Split sizes as "
                                "an input); choose 13 to " + std::to_string(kMaxOnnxOpset));
  if (options.batch && *options.batch < 1)
    throw std::invalid_argument("ONNX export: the batch size must be at least 1, got " + std::to_string(*options.batch));
}

namespace {

void add_metadata(onnx::ModelProto& model, const ModelMetadata& metadata) {
  auto add = [&](const std::string& key, const std::string& value) {
    auto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  };
  const ViTConfig& c = metadata.config;
  const PreprocessConfig& p = metadata.preprocess;
  // The whole description in vit's own JSON (as a TorchScript export's vit.json), then the preprocessing and
  // labels under the names of timm's pretrained_cfg, each value JSON.
  add("vit.json", metadata_to_json(metadata));
  add("input_size", nlohmann::json({c.in_chans, c.image_size, c.image_size}).dump());
  add("interpolation", to_string(p.interpolation));
  add("crop_pct", nlohmann::json(p.crop_pct).dump());
  add("mean", nlohmann::json(p.mean).dump());
  add("std", nlohmann::json(p.std).dump());
  add("label_names", nlohmann::json(metadata.class_names).dump());
}

// Moves the large float tensors' bytes into `data_path` (each at an offset aligned to 4 KiB, so that a runtime
// can map them on Linux) and leaves references in the model. Small and int64 tensors stay inline: shape inference reads
// those, and cannot read them from a data file.
void move_to_external_data(onnx::ModelProto& model, const fs::path& data_path) {
  constexpr size_t kInlineBytes = 1024;
  constexpr int64_t kAlignment = 4096;
  write_file_atomically(data_path, [&](std::ostream& stream) {
    int64_t offset = 0;
    for (auto& tensor : *model.mutable_graph()->mutable_initializer()) {
      if (tensor.data_type() != onnx::TensorProto_DataType_FLOAT || tensor.raw_data().size() < kInlineBytes) continue;
      const int64_t padding = (kAlignment - offset % kAlignment) % kAlignment;
      stream << std::string(static_cast<size_t>(padding), '\0');
      offset += padding;
      const auto length = static_cast<int64_t>(tensor.raw_data().size());
      stream.write(tensor.raw_data().data(), length);
      auto entry = [&](const std::string& key, const std::string& value) {
        auto* e = tensor.add_external_data();
        e->set_key(key);
        e->set_value(value);
      };
      entry("location", data_path.filename().string());
      entry("offset", std::to_string(offset));
      entry("length", std::to_string(length));
      tensor.set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
      tensor.clear_raw_data();
      offset += length;
    }
  });
}

// The model and its data file as a pair: both written under their final names into a private folder beside them,
// checked there (the checker follows the data references), then moved into place, the data first. A failure
// before the moves leaves any earlier pair untouched.
void write_external_pair(onnx::ModelProto& proto, const fs::path& out, const fs::path& data_file,
                         const std::function<void(std::ostream&)>& serialise, const std::string& where) {
  const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  const fs::path staging = parent / ("." + out.filename().string() + ".staging." + std::to_string(::getpid()));
  std::error_code error;
  if (!fs::create_directory(staging, error) || error)
    throw std::runtime_error("cannot write '" + out.string() + "': " +
                             (error ? error.message() : "'" + staging.string() + "' already exists"));
  try {
    move_to_external_data(proto, staging / data_file.filename());
    write_file_atomically(staging / out.filename(), serialise);
    try {
      onnx::checker::check_model((staging / out.filename()).string());
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("the ONNX checker refused the external data: ") + e.what());
    }
    fs::rename(staging / data_file.filename(), data_file);
    fs::rename(staging / out.filename(), out);
    sync_path(parent, O_RDONLY | O_DIRECTORY);
  } catch (const std::exception& e) {
    remove_tree(staging);
    throw std::runtime_error(where + ": " + e.what());
  }
  remove_tree(staging);
}

}  // namespace

bool onnx_export_available() { return true; }

bool export_onnx(VisionTransformer& model, const ModelMetadata& metadata, const fs::path& out,
                 const OnnxExportOptions& options) {
  validate_onnx_options(options);
  metadata.validate();
  model->eval();
  model->to(torch::kCPU);
  const ViTConfig& c = metadata.config;
  std::map<std::string, at::Tensor> tensors;
  for (const auto& item : model->named_parameters()) tensors[item.key()] = item.value().detach().to(torch::kFloat);
  for (const auto& item : model->named_buffers()) tensors[item.key()] = item.value().detach().to(torch::kFloat);

  onnx::ModelProto proto;
  // The IR version of the ONNX release that introduced the opset (IR 7 with opsets 12-14, IR 8 with 15-17): older
  // runtimes that read only IR 7 then take opsets 13 and 14.
  proto.set_ir_version(options.opset <= 14 ? 7 : 8);
  proto.set_producer_name("vit");
  proto.set_producer_version(options.producer_version);
  proto.add_opset_import()->set_version(options.opset);
  auto& graph = *proto.mutable_graph();
  graph.set_name("vision_transformer");
  GraphBuilder g(graph);
  const Dim batch = options.batch ? Dim{*options.batch} : Dim{std::string("batch")};
  g.input("images", {batch, c.in_chans, c.image_size, c.image_size});
  const auto result = ViTGraphWriter(g, c, tensors, options.opset).forward("images");
  const int64_t width = c.num_classes > 0 ? c.num_classes : c.num_features();
  const std::string output_name = c.num_classes > 0 ? "logits" : "features";
  // The last node's output takes the graph output's name.
  auto& last = *graph.mutable_node(graph.node_size() - 1);
  if (last.output(0) != result) throw std::logic_error("ONNX export: the result is not the last node's output");
  last.set_output(0, output_name);
  if (c.global_pool == GlobalPool::None) {
    g.output(output_name, {batch, c.sequence_length(), width});
  } else {
    g.output(output_name, {batch, width});
  }
  add_metadata(proto, metadata);

  const std::string where = "ONNX export '" + out.string() + "'";
  try {
    onnx::checker::check_model(proto);
    // Strict: every node's shapes inferred, types checked, and the result must agree with the declared output.
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions{/*check_type=*/true, /*error_mode=*/1,
                                                                   /*enable_data_propagation=*/true});
  } catch (const std::exception& e) {
    throw std::runtime_error(where + ": the ONNX checker refused the graph: " + e.what());
  }

  int64_t weight_bytes = 0;
  for (const auto& tensor : graph.initializer()) weight_bytes += static_cast<int64_t>(tensor.raw_data().size());
  const bool external = options.external_data || weight_bytes > kOnnxExternalDataThreshold;
  const auto serialise = [&](std::ostream& stream) {
    if (proto.ByteSizeLong() >= static_cast<size_t>(std::numeric_limits<int>::max()))
      throw std::runtime_error(external ? "the graph is over protobuf's 2 GiB limit even without its weights"
                                        : "the model is over protobuf's 2 GiB limit: export with --external-data");
    if (!proto.SerializeToOstream(&stream)) throw std::runtime_error("could not serialise the model");
  };
  const fs::path data_file(out.string() + ".data");
  if (!external) {
    write_file_atomically(out, serialise);
    // A data file left by an earlier external export of this name belonged to the file just replaced.
    std::error_code ignored;
    fs::remove(data_file, ignored);
    return false;
  }
  write_external_pair(proto, out, data_file, serialise, where);
  return true;
}

OnnxFileSummary read_onnx_summary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto proto;
  if (!in || !proto.ParseFromIstream(&in) || !proto.has_graph())
    throw std::runtime_error("'" + path.string() + "' is not an ONNX model (no ModelProto with a graph)");
  OnnxFileSummary s;
  s.ir_version = proto.ir_version();
  for (const auto& opset : proto.opset_import())
    if (opset.domain().empty() || opset.domain() == "ai.onnx") s.opset = opset.version();
  s.producer = proto.producer_name() + (proto.producer_version().empty() ? "" : " " + proto.producer_version());
  auto values = [](const auto& list) {
    std::vector<OnnxFileSummary::Value> result;
    for (const auto& v : list) {
      OnnxFileSummary::Value value{v.name(), {}};
      for (const auto& d : v.type().tensor_type().shape().dim())
        value.dims.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
      result.push_back(value);
    }
    return result;
  };
  const auto& graph = proto.graph();
  // Graph inputs that are also initializers (older exporters list weights there) are not model inputs.
  std::set<std::string> initializer_names;
  for (const auto& t : graph.initializer()) {
    initializer_names.insert(t.name());
    ++s.initializers;
    if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) ++s.external_initializers;
  }
  for (const auto& input : values(graph.input()))
    if (!initializer_names.count(input.name)) s.inputs.push_back(input);
  s.outputs = values(graph.output());
  for (const auto& node : graph.node()) s.op_types.insert(node.op_type());
  s.nodes = graph.node_size();
  for (const auto& entry : proto.metadata_props()) s.metadata[entry.key()] = entry.value();
  return s;
}

}  // namespace vit
