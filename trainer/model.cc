#include "model.h"

#include "loss_weights.h"
#include "model_io.h"

namespace mtan::trainer {
namespace {

torch::nn::Linear MakeLinear(torch::nn::Module* parent, const std::string& name, int in, int out) {
  return parent->register_module(name, torch::nn::Linear(in, out));
}

host::Dense ToDense(const torch::nn::Linear& l) {
  host::Dense d;
  torch::Tensor w = l->weight.detach().to(torch::kFloat32).contiguous();
  torch::Tensor b = l->bias.detach().to(torch::kFloat32).contiguous();
  d.out = static_cast<int>(w.size(0));
  d.in = static_cast<int>(w.size(1));
  d.w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  d.b.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
  return d;
}

}  // namespace

MtanNetImpl::MtanNetImpl(const ModelConfig& config) : config_(config) {
  const int T = config.num_tasks();
  for (size_t k = 0; k < config.tables.size(); ++k) {
    // N(0, 0.1^2): pooled bags start on the scale of a tenth of a
    // standardised feature, so they do not drown the dense inputs.
    tables.push_back(register_parameter(
        "embedding" + std::to_string(k),
        torch::randn({config.tables[k].rows, config.tables[k].dim}) * 0.1));
  }
  trunks.resize(config.num_trunks());
  int width = config.trunk_inputs();
  for (size_t k = 0; k < trunks.size(); ++k) {
    int in = config.trunk_inputs();
    for (size_t l = 0; l < config.trunk.size(); ++l) {
      trunks[k].push_back(MakeLinear(this, "trunk" + std::to_string(k) + "_fc" + std::to_string(l + 1),
                                     in, config.trunk[l]));
      in = config.trunk[l];
    }
    width = in;
  }
  tasks.resize(T);
  for (int t = 0; t < T; ++t) {
    const std::string p = "task" + std::to_string(t) + "_";
    TaskLayers& L = tasks[t];
    if (config.masks()) {
      L.mask_down = MakeLinear(this, p + "mask_down", width, config.mask_hidden);
      L.mask_up = MakeLinear(this, p + "mask_up", config.mask_hidden, width);
    }
    L.task = MakeLinear(this, p + "task", width, config.task_width);
    if (config.cross()) {
      L.att = MakeLinear(this, p + "att", config.task_width, config.att_hidden);
      L.att_score = MakeLinear(this, p + "att_score", config.att_hidden, 1);
    }
    L.head = MakeLinear(this, p + "head", config.task_width, config.outputs[t]);
  }
}

NetOutput MtanNetImpl::forward(const torch::Tensor& x_std, const std::vector<torch::Tensor>& ids) {
  const int T = config_.num_tasks();
  torch::Tensor x = x_std, embedding_sq;
  if (!config_.bags.empty()) {
    // EMBEDDING_BAG's definition: the rows the ids name (-1 pads), summed,
    // divided by their count for mean when there are two or more.
    std::vector<torch::Tensor> parts = {x_std};
    torch::Tensor sq = torch::zeros({});
    for (size_t k = 0; k < config_.bags.size(); ++k) {
      const torch::Tensor& r = ids.at(k);  // [B, L]
      const torch::Tensor keep = r.ge(0);
      const torch::Tensor rows = r.clamp_min(0);
      torch::Tensor e = tables[config_.bags[k].table].index_select(0, rows.reshape({-1}))
                            .view({r.size(0), r.size(1), -1});
      const torch::Tensor kept = e * keep.unsqueeze(2).to(e.dtype());
      sq = sq + (kept * kept).sum();
      torch::Tensor bag = kept.sum(1);
      if (config_.bags[k].mean)
        bag = bag / keep.sum(1, /*keepdim=*/true).clamp_min(1).to(bag.dtype());
      parts.push_back(bag);
    }
    x = torch::cat(parts, 1);
    embedding_sq = sq / static_cast<double>(x_std.size(0));
  }
  const bool drop = config_.dropout > 0 && is_training();
  auto dropout = [&](const torch::Tensor& v) {
    return drop ? torch::dropout(v, config_.dropout, /*train=*/true) : v;
  };
  std::vector<torch::Tensor> h(trunks.size());
  for (size_t k = 0; k < trunks.size(); ++k) {
    torch::Tensor v = x;
    for (auto& layer : trunks[k]) v = dropout(torch::relu(layer->forward(v)));
    h[k] = v;
  }
  std::vector<torch::Tensor> z(T);
  for (int t = 0; t < T; ++t) {
    torch::Tensor v = h[config_.arch == Arch::kSingle ? t : 0];
    if (config_.masks()) {
      torch::Tensor a = torch::sigmoid(tasks[t].mask_up->forward(torch::relu(tasks[t].mask_down->forward(v))));
      v = a * v;
    }
    z[t] = dropout(torch::relu(tasks[t].task->forward(v)));
  }
  NetOutput out;
  out.embedding_sq = embedding_sq;
  if (config_.cross()) {
    torch::Tensor zs = torch::stack(z, 1);  // [B, T, C]
    std::vector<torch::Tensor> alphas(T);
    for (int t = 0; t < T; ++t) {
      torch::Tensor e = tasks[t].att_score->forward(torch::tanh(tasks[t].att->forward(zs))).squeeze(2);
      torch::Tensor alpha = torch::softmax(e, 1);                        // [B, T]
      // sum_s alpha_s z_s as a product and a sum: bmm of B tiny [1,T]x[T,C]
      // matrices made ~15% of a training step.
      torch::Tensor c = (alpha.unsqueeze(2) * zs).sum(1);  // [B, C]
      out.logits.push_back(tasks[t].head->forward(c));
      alphas[t] = alpha;
    }
    out.alpha = torch::stack(alphas, 1);  // [B, T(t), T(s)]
  } else {
    for (int t = 0; t < T; ++t) out.logits.push_back(tasks[t].head->forward(z[t]));
  }
  return out;
}

torch::Tensor UncertaintyWeighted(fb::TaskKind type, const torch::Tensor& loss,
                                  const torch::Tensor& log_var) {
  return UncertaintyCoefficient(type) * torch::exp(-log_var) * loss + 0.5 * log_var;
}

torch::Tensor Predict(const host::TaskSpec& task, const torch::Tensor& logits,
                      const LabelScale& scale) {
  switch (task.type) {
    case fb::TaskKind::BINARY: return torch::sigmoid(logits);
    case fb::TaskKind::MULTICLASS: return torch::softmax(logits, 1);
    case fb::TaskKind::REGRESSION: return logits * scale.std + scale.mean;
  }
  return logits;
}

torch::Tensor RuntimeEquivalentOutputs(MtanNet& net, const host::Spec& spec,
                                       const torch::Tensor& x_raw,
                                       const std::vector<torch::Tensor>& ids,
                                       const torch::Tensor& mean, const torch::Tensor& stddev,
                                       const std::vector<LabelScale>& scales) {
  torch::NoGradGuard no_grad;
  NetOutput o = net->forward((x_raw - mean) / stddev, ids);
  std::vector<torch::Tensor> parts;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    torch::Tensor p = Predict(spec.tasks[t], o.logits[t], scales[t]);
    if (spec.tasks[t].log1p) p = torch::expm1(p);
    parts.push_back(p);
  }
  return torch::cat(parts, 1);
}

void ExportWeights(MtanNet& net, const host::Spec& spec, const std::vector<std::string>& features,
                   const std::vector<host::IdTable>& tables, const std::vector<float>& mean,
                   const std::vector<float>& stddev, const std::vector<LabelScale>& scales,
                   host::MtanWeights* w) {
  const ModelConfig& c = net->config();
  w->feature_names = features;
  w->mean = mean;
  w->stddev = stddev;
  w->tables.clear();
  for (size_t k = 0; k < tables.size(); ++k) {
    host::EmbeddingTable t;
    t.name = tables[k].name;
    t.map = tables[k].map;
    t.vocabulary = tables[k].vocabulary;
    t.hash_buckets = tables[k].hash_buckets;
    t.rows = static_cast<int>(tables[k].rows());
    t.dim = tables[k].dim;
    const torch::Tensor e = net->tables[k].detach().to(torch::kFloat32).contiguous();
    t.w.assign(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
    w->tables.push_back(std::move(t));
  }
  w->id_inputs.clear();
  for (const host::IdFeatureSpec& f : spec.id_features)
    w->id_inputs.push_back({f.name, f.max_length, f.combiner, f.table});
  w->trunks.clear();
  for (auto& trunk : net->trunks) {
    std::vector<host::Dense> layers;
    for (auto& l : trunk) layers.push_back(ToDense(l));
    w->trunks.push_back(std::move(layers));
  }
  w->tasks.clear();
  for (int t = 0; t < c.num_tasks(); ++t) {
    const host::TaskSpec& ts = spec.tasks[t];
    const TaskLayers& L = net->tasks[t];
    host::TaskHead h;
    h.name = ts.name;
    h.kind = ts.type;
    h.class_names = ts.class_names;
    if (ts.type == fb::TaskKind::MULTICLASS && h.class_names.empty()) {
      for (int k = 0; k < ts.classes; ++k) h.class_names.push_back(std::to_string(k));
    }
    h.transform = ts.log1p ? fb::OutputTransform::EXPM1 : fb::OutputTransform::IDENTITY;
    h.trunk = c.arch == Arch::kSingle ? t : 0;
    h.has_mask = c.masks();
    if (h.has_mask) {
      h.mask_down = ToDense(L.mask_down);
      h.mask_up = ToDense(L.mask_up);
    }
    h.task = ToDense(L.task);
    h.has_cross = c.cross();
    if (h.has_cross) {
      h.att = ToDense(L.att);
      h.att_score = ToDense(L.att_score);
    }
    h.head = ToDense(L.head);
    if (ts.type == fb::TaskKind::REGRESSION) {
      // Fold the label standardisation: o = (W c + b) std + mean.
      const float s = static_cast<float>(scales[t].std), m = static_cast<float>(scales[t].mean);
      for (float& v : h.head.w) v *= s;
      for (float& v : h.head.b) v = v * s + m;
    }
    w->tasks.push_back(std::move(h));
  }
}

}  // namespace mtan::trainer
