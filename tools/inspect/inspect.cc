#include "inspect.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ostream>

#include "model_io.h"
#include "mtan/mtan.h"

namespace mtan::inspect {
namespace {

using Json = nlohmann::ordered_json;

std::string ShapeText(const std::vector<int32_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Ascending operator indices as ranges: "0-22, 35, 37-38".
std::string Ranges(const std::vector<uint32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += j == i ? std::to_string(v[i]) : std::to_string(v[i]) + "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return s;
}

// "per-tensor s=0.0123 zp=-5", "per-channel x128 s=[1e-3, 4e-3]", or "none".
std::string QuantText(const fb::QuantizationT* q) {
  if (q == nullptr || q->scale.empty()) return "none";
  if (q->scale.size() == 1)
    return fmt::format("s={:.4g} zp={}", q->scale[0], q->zero_point.empty() ? 0 : q->zero_point[0]);
  const auto [lo, hi] = std::minmax_element(q->scale.begin(), q->scale.end());
  return fmt::format("per-channel x{} s=[{:.3g}, {:.3g}]", q->scale.size(), *lo, *hi);
}

Json TensorJson(const fb::ModelT& m, int32_t t) {
  const fb::TensorT& x = *m.tensors.at(t);
  Json j;
  j["index"] = t;
  j["name"] = x.name;
  j["dtype"] = fb::EnumNameDType(x.dtype);
  j["shape"] = x.shape;
  j["constant"] = x.buffer != 0;
  j["quantization"] = QuantText(x.quantization.get());
  if (x.quantization && x.quantization->scale.size() == 1) {
    j["scale"] = x.quantization->scale[0];
    j["zero_point"] = x.quantization->zero_point.empty() ? 0 : x.quantization->zero_point[0];
  }
  return j;
}

// Arena bytes mtan_load needs for this file at `batch` on `backend`; null
// where the build or the backend cannot load it.
Json ArenaBytes(const host::ModelBytes& bytes, uint32_t batch, mtan_backend backend) {
  mtan_options opt = mtan_options_default();
  opt.max_batch = batch;
  opt.backend = backend;
  size_t need = 0;
  if (mtan_arena_size(bytes.data(), bytes.size(), &opt, &need) != MTAN_OK) return nullptr;
  return need;
}

}  // namespace

bool Describe(const std::string& name, const std::vector<uint8_t>& file, Json* out,
              std::string* error) {
  const host::ModelBytes bytes(file);
  fb::ModelT m;
  if (!host::UnpackModel(bytes, &m, error)) return false;
  Json& d = *out;
  d = Json::object();
  d["file"] = name;
  d["file_bytes"] = file.size();
  d["version"] = std::to_string(m.version_major) + "." + std::to_string(m.version_minor);
  d["producer"] = m.metadata ? m.metadata->producer : "";
  d["description"] = m.metadata ? m.metadata->description : "";
  Json props = Json::object();
  if (m.metadata)
    for (const auto& kv : m.metadata->properties) props[kv->key] = kv->value;
  d["properties"] = props;

  Json inputs = Json::array();
  for (const auto& in : m.inputs) inputs.push_back({{"name", in->name}, {"mean", in->mean}, {"std", in->std}});
  d["inputs"] = inputs;
  Json tensor_inputs = Json::array();
  for (const auto& in : m.tensor_inputs) {
    const fb::TensorT& t = *m.tensors.at(in->tensor);
    const size_t keys = in->id_map == fb::IdMap::VOCABULARY ? m.buffers.at(in->vocabulary)->data.size() / 8 : 0;
    tensor_inputs.push_back({{"name", in->name}, {"dtype", fb::EnumNameDType(t.dtype)}, {"shape", t.shape},
                             {"id_map", fb::EnumNameIdMap(in->id_map)}, {"vocabulary_keys", keys},
                             {"hash_buckets", in->hash_buckets}});
  }
  d["tensor_inputs"] = tensor_inputs;
  // Embedding tables: each EMBEDDING_BAG's table once, with the inputs that
  // read it and its bytes in the file (rows, plus an int8 table's per-row
  // scales and zero points), read in place at run time.
  Json tables = Json::array();
  std::vector<int32_t> table_of;
  for (const auto& op : m.operators) {
    if (op->opcode != fb::OpCode::EMBEDDING_BAG) continue;
    const int32_t t = op->inputs.at(1);
    const auto it = std::find(table_of.begin(), table_of.end(), t);
    const std::string reader = m.tensors.at(op->inputs.at(0))->name;
    if (it != table_of.end()) {
      tables[it - table_of.begin()]["read_by"].push_back(reader);
      continue;
    }
    table_of.push_back(t);
    const fb::TensorT& x = *m.tensors.at(t);
    uint64_t bytes = m.buffers.at(x.buffer)->data.size();
    if (x.quantization) bytes += 4 * (x.quantization->scale.size() + x.quantization->zero_point.size());
    tables.push_back({{"name", x.name}, {"rows", x.shape.at(0)}, {"dim", x.shape.at(1)},
                      {"dtype", fb::EnumNameDType(x.dtype)}, {"bytes", bytes},
                      {"read_by", Json::array({reader})}});
  }
  d["tables"] = tables;

  Json tasks = Json::array();
  for (const auto& t : m.tasks) {
    Json j;
    j["name"] = t->name;
    j["kind"] = fb::EnumNameTaskKind(t->kind);
    j["classes"] = t->class_names;
    j["output"] = m.tensors.at(t->output)->name;
    j["output_size"] = host::TaskOutputSize(m, *t);
    j["transform"] = fb::EnumNameOutputTransform(t->transform);
    j["operator_count"] = t->plan.size();
    j["plan"] = t->plan;
    tasks.push_back(j);
  }
  d["tasks"] = tasks;

  Json ops = Json::array();
  uint64_t total_weight_bytes = 0;
  bool int8 = false;
  for (size_t o = 0; o < m.operators.size(); ++o) {
    const fb::OperatorT& op = *m.operators[o];
    Json j;
    j["index"] = o;
    j["op"] = fb::EnumNameOpCode(op.opcode);
    j["activation"] = fb::EnumNameActivation(op.activation);
    Json ins = Json::array();
    uint64_t weight_bytes = 0;
    for (int32_t t : op.inputs) {
      ins.push_back(TensorJson(m, t));
      const fb::TensorT& x = *m.tensors.at(t);
      if (x.buffer != 0) weight_bytes += m.buffers.at(x.buffer)->data.size();
    }
    j["inputs"] = ins;
    j["output"] = TensorJson(m, op.outputs.at(0));
    // The operator's dtype: what it computes in (its first input's).
    const fb::DType dt = m.tensors.at(op.inputs.at(0))->dtype;
    int8 |= dt == fb::DType::INT8 || m.tensors.at(op.outputs[0])->dtype == fb::DType::INT8;
    j["dtype"] = fb::EnumNameDType(dt);
    j["weight_bytes"] = weight_bytes;
    total_weight_bytes += weight_bytes;
    ops.push_back(j);
  }
  d["dtype"] = int8 ? "int8" : "float32";
  d["operators"] = ops;
  d["tensor_count"] = m.tensors.size();
  d["weight_bytes"] = total_weight_bytes;
  d["activation_bytes_per_row"] = m.activation_bytes_per_row;
  d["max_batch"] = m.max_batch;
  d["arena_bytes_recorded"] = m.arena_bytes;
  Json arena = Json::array();
  std::vector<uint32_t> batches = {1};
  if (m.max_batch > 1) batches.push_back(m.max_batch);
  for (uint32_t b : batches) {
    arena.push_back({{"batch", b},
                     {"default", ArenaBytes(bytes, b, MTAN_BACKEND_DEFAULT)},
                     {"xnnpack", ArenaBytes(bytes, b, MTAN_BACKEND_XNNPACK)},
                     {"reference", ArenaBytes(bytes, b, MTAN_BACKEND_REFERENCE)}});
  }
  d["arena"] = arena;
  Json metrics = Json::array();
  if (m.metadata)
    for (const auto& mt : m.metadata->metrics) metrics.push_back({{"name", mt->name}, {"value", mt->value}});
  d["metrics"] = metrics;
  d["golden_case_count"] = m.golden.size();
  Json golden = Json::array();
  for (const auto& g : m.golden)
    golden.push_back({{"rows", g->rows}, {"tolerance", g->tolerance}, {"tolerances", g->tolerances}});
  d["golden_cases"] = golden;
  return true;
}

void WriteText(const Json& d, std::ostream& out, bool summary) {
  out << d["file"].get<std::string>() << ": " << d["file_bytes"].get<uint64_t>() << " bytes, "
      << d["dtype"].get<std::string>() << ", format " << d["version"].get<std::string>()
      << ", verified\n";
  out << "producer: " << d["producer"].get<std::string>() << "\n";
  if (!d["description"].get<std::string>().empty())
    out << "description: " << d["description"].get<std::string>() << "\n";
  for (const auto& [k, v] : d["properties"].items()) out << "  " << k << " = " << v.get<std::string>() << "\n";

  out << "\ninputs (" << d["inputs"].size() << ")" << (summary ? "\n" : ", standardised as (x - mean) / std:\n");
  for (size_t i = 0; !summary && i < d["inputs"].size(); ++i) {
    const Json& in = d["inputs"][i];
    out << fmt::format("  {:>4}  {:<24} mean {:<12.6g} std {:.6g}\n", i, in["name"].get<std::string>(),
                       in["mean"].get<double>(), in["std"].get<double>());
  }

  if (!d["tensor_inputs"].empty()) {
    out << "\ntensor inputs (" << d["tensor_inputs"].size() << "), per row:\n";
    for (const Json& in : d["tensor_inputs"])
      out << fmt::format("  {:<24} {} {} ids: {}\n", in["name"].get<std::string>(), in["dtype"].get<std::string>(),
                         in["shape"].dump(),
                         in["id_map"] == "VOCABULARY" ? fmt::format("vocabulary of {} keys", in["vocabulary_keys"].get<size_t>())
                         : in["id_map"] == "HASHED"   ? fmt::format("hashed into {} buckets", in["hash_buckets"].get<uint32_t>())
                                                      : std::string("row numbers"));
  }

  if (!d["tables"].empty()) {
    out << "\nembedding tables (" << d["tables"].size() << "), read in place from the file:\n";
    for (const Json& t : d["tables"]) {
      std::string readers;
      for (const Json& r : t["read_by"]) readers += (readers.empty() ? "" : ", ") + r.get<std::string>();
      out << fmt::format("  {:<24} {} rows x {} {} ({} bytes), read by {}\n", t["name"].get<std::string>(),
                         t["rows"].get<int>(), t["dim"].get<int>(), t["dtype"].get<std::string>(),
                         t["bytes"].get<uint64_t>(), readers);
    }
  }

  out << "\ntasks (" << d["tasks"].size() << "):\n";
  for (const Json& t : d["tasks"]) {
    out << fmt::format("  {:<16} {:<10} outputs {}", t["name"].get<std::string>(),
                       t["kind"].get<std::string>(), t["output_size"].get<int>());
    if (!t["classes"].empty()) {
      std::string cls;
      for (const auto& c : t["classes"]) cls += (cls.empty() ? "" : ", ") + c.get<std::string>();
      out << " (" << cls << ")";
    }
    if (t["transform"].get<std::string>() != "IDENTITY") out << ", then " << t["transform"].get<std::string>();
    out << "\n    plan: " << t["operator_count"].get<size_t>() << " operators: "
        << Ranges(t["plan"].get<std::vector<uint32_t>>()) << "\n";
  }

  if (summary) {
    out << "\noperators (" << d["operators"].size() << "): " << d["weight_bytes"].get<uint64_t>()
        << " weight bytes; activations: " << d["activation_bytes_per_row"].get<uint64_t>()
        << " bytes per row\n";
  } else {
  out << "\noperators (" << d["operators"].size() << "):\n";
  out << fmt::format("  {:>4}  {:<16} {:<5} {:<8} {:<30} {:<18} {:<56} {:>9}\n", "#", "op", "act",
                     "dtype", "output", "shape", "quantization (output / weights)", "weights B");
  for (const Json& op : d["operators"]) {
    const Json& y = op["output"];
    std::string quant = y["quantization"].get<std::string>();
    for (const Json& in : op["inputs"])
      if (in["constant"].get<bool>() && in["dtype"].get<std::string>() == "INT8")
        quant += " / w " + in["quantization"].get<std::string>();
    std::string shape;
    for (const Json& in : op["inputs"]) {
      if (in["constant"].get<bool>()) continue;
      shape += (shape.empty() ? "" : "+") + ShapeText(in["shape"].get<std::vector<int32_t>>());
    }
    if (op["inputs"].size() > 3 && op["op"].get<std::string>() == "ATTENTION_POOL")
      shape = std::to_string(op["inputs"].size()) + " in";
    shape += "→" + ShapeText(y["shape"].get<std::vector<int32_t>>());
    auto short_dtype = [](const std::string& t) {
      return t == "FLOAT32" ? std::string("f32")
             : t == "INT8"  ? std::string("i8")
             : t == "INT64" ? std::string("i64")
                            : std::string("i32");
    };
    std::string dtype = short_dtype(op["dtype"].get<std::string>());
    const std::string out_dtype = short_dtype(y["dtype"].get<std::string>());
    if (out_dtype != dtype) dtype += "→" + out_dtype;
    out << fmt::format("  {:>4}  {:<16} {:<5} {:<8} {:<30} {:<18} {:<56} {:>9}\n",
                       op["index"].get<size_t>(), op["op"].get<std::string>(),
                       op["activation"].get<std::string>() == "NONE" ? "" : "relu", dtype, y["name"].get<std::string>(), shape, quant,
                       op["weight_bytes"].get<uint64_t>());
  }
  out << "  weights: " << d["weight_bytes"].get<uint64_t>() << " bytes in " << d["tensor_count"].get<size_t>()
      << " tensors; activations: " << d["activation_bytes_per_row"].get<uint64_t>() << " bytes per row\n";
  }

  out << "\narena bytes (mtan_arena_size on this host):\n";
  for (const Json& a : d["arena"]) {
    auto cell = [](const Json& v) { return v.is_null() ? std::string("unavailable") : std::to_string(v.get<uint64_t>()); };
    out << fmt::format("  batch {:<6} default {:<12} xnnpack {:<12} reference {}\n",
                       a["batch"].get<uint32_t>(), cell(a["default"]), cell(a["xnnpack"]),
                       cell(a["reference"]));
  }
  out << "  stored max batch " << d["max_batch"].get<uint32_t>() << "; the writer measured "
      << d["arena_bytes_recorded"].get<uint64_t>() << " bytes on its host\n";

  out << "\nmetrics (" << d["metrics"].size() << ")" << (summary ? "" : ":") << "\n";
  for (const Json& m : summary ? Json::array() : d["metrics"])
    out << fmt::format("  {:<40} {:.6g}\n", m["name"].get<std::string>(), m["value"].get<double>());
  out << "\ngolden cases: " << d["golden_case_count"].get<size_t>();
  for (const Json& g : d["golden_cases"]) {
    const auto tols = g["tolerances"].get<std::vector<double>>();
    if (tols.empty())
      out << fmt::format(" [{} rows, tolerance {:.3g}]", g["rows"].get<uint32_t>(), g["tolerance"].get<double>());
    else  // format 1.1: one per output
      out << fmt::format(" [{} rows, tolerances {:.3g}..{:.3g}]", g["rows"].get<uint32_t>(),
                         *std::min_element(tols.begin(), tols.end()), g["tolerance"].get<double>());
  }
  out << "\n";
}

int InspectMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"mtan-inspect: what is inside a .mtan model file", "mtan-inspect"};
  std::string path;
  bool json = false, summary = false;
  app.add_option("model", path, "The .mtan file")->required();
  app.add_flag("--json", json, "One JSON object instead of text");
  app.add_flag("--summary", summary,
               "Text without the per-input, per-operator and metric lists (about 20 lines)")
      ->excludes("--json");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "mtan-inspect: " << e.what() << "\n";
    return 2;
  }
  std::vector<uint8_t> bytes;
  std::string error;
  if (!host::ReadFile(path, &bytes, &error)) {
    err << "mtan-inspect: " << error << "\n";
    return 1;
  }
  Json d;
  try {
    if (!Describe(path, bytes, &d, &error)) {
      err << "mtan-inspect: " << path << ": " << error << "\n";
      return 1;
    }
    if (json) {
      out << d.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    } else {
      WriteText(d, out, summary);
    }
  } catch (const std::exception& e) {  // only std::bad_alloc is expected here
    err << "mtan-inspect: " << path << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace mtan::inspect
