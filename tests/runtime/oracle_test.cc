// Every operator of the runtime, on the reference backend, on XNNPACK and on
// the default backend (the VNNI int8 fully-connected kernels where the CPU
// has them),
// against its definition (oracle.h): each operator of a model is recomputed
// from the input tensors the run left behind (models written without memory
// reuse keep them all) and the weights and quantization in the file, and
// compared with the tensor the backend wrote. Real MTAN graphs give realistic
// scales; small hand-built graphs give exact ties (power-of-two scales),
// saturation, zero points, ReLU and all 256 codes of LOGISTIC and TANH.
//
// Int8 results must be exactly the oracle's code (either neighbour only
// within float32 rounding of a tie). The one documented exception is
// XNNPACK's int8 ADD and MUL on exact ties (kXnnpackTieLsb).
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "model_io.h"
#include "oracle.h"
#include "test_models.h"

using namespace mtan;

namespace {

// Debian's XNNPACK (2022) computes int8 ADD, and on ARM int8 MUL, in fixed
// point (integer multipliers, then a rounding shift) that rounds an exact
// tie half up instead of to even. Measured here: ADD is one code above the
// rule on 426 of 1,018 exact ties (x86-64 and aarch64 alike), MUL on 38 of
// 61 on aarch64 and none on x86-64 (whose MUL is float, ties to even);
// neither is off anywhere else. So XNNPACK's exact ties of these two may be
// one code off; nothing else of either backend may differ anywhere. (The
// writer never emits ADD; the masks' MUL has arbitrary scales, where exact
// ties are rare: none among the int8 MTAN's 3,072 MUL values.)
const std::map<fb::OpCode, int> kXnnpackTieLsb = {{fb::OpCode::ADD, 1}, {fb::OpCode::MUL, 1}};

// What one operator kind's checks found.
struct Tally {
  size_t values = 0, exact_ties = 0, near_ties = 0, saturated = 0;
  size_t off = 0;           // int8: values not an acceptable code
  size_t off_at_ties = 0;   // ... of which exact ties
  int max_lsb = 0;          // int8: largest distance from an acceptable code
  double max_ratio = 0;     // float: largest |error| / tolerance
};

std::string Name(fb::OpCode c) { return fb::EnumNameOpCode(c); }

class Walk {
 public:
  Walk(const host::ModelBytes& bytes, mtan_model* rt, const float* rows, uint32_t n)
      : m_(fb::GetModel(bytes.data())), rt_(rt), rows_(rows), n_(n) {}

  // Checks every operator. Int8 results must be acceptable codes, except
  // that `tie_lsb` lets an opcode's exact ties be off by that many codes.
  std::map<fb::OpCode, Tally> CheckAll(const std::map<fb::OpCode, int>& tie_lsb) {
    std::map<fb::OpCode, Tally> tally;
    for (uint32_t o = 0; o < m_->operators()->size(); ++o) {
      const fb::Operator* op = m_->operators()->Get(o);
      const int y = op->outputs()->Get(0);
      CAPTURE(o);
      CAPTURE(Name(op->opcode()));
      CAPTURE(std::string(m_->tensors()->Get(y)->name()->c_str()));
      Tally& t = tally[op->opcode()];
      const auto bound = tie_lsb.find(op->opcode());
      Check(op, &t, bound == tie_lsb.end() ? 0 : bound->second);
    }
    return tally;
  }

 private:
  const fb::Tensor* T(int t) const { return m_->tensors()->Get(t); }
  // Values per row: the product of the per-row shape.
  uint32_t Channels(int t) const {
    uint32_t n = 1;
    for (int32_t d : *T(t)->shape()) n *= static_cast<uint32_t>(d);
    return n;
  }
  bool Int8(int t) const { return T(t)->dtype() == fb::DType::INT8; }
  oracle::Quant Q(int t) const {
    oracle::Quant q;
    const fb::Quantization* p = T(t)->quantization();
    if (p && p->scale() && p->scale()->size()) q.scale = p->scale()->Get(0);
    if (p && p->zero_point() && p->zero_point()->size()) q.zero_point = p->zero_point()->Get(0);
    return q;
  }
  // An activation as the run left it, or a constant's bytes in the file.
  const void* Data(int t) const {
    if (t == m_->input_tensor()) return rows_;
    if (T(t)->buffer() != 0) return m_->buffers()->Get(T(t)->buffer())->data()->data();
    mtan_tensor_desc d;
    REQUIRE(mtan_tensor_get(rt_, static_cast<uint32_t>(t), &d) == MTAN_OK);
    REQUIRE(d.data != nullptr);
    return d.data;
  }
  const int8_t* S8(int t) const { return static_cast<const int8_t*>(Data(t)); }
  const float* F32(int t) const { return static_cast<const float*>(Data(t)); }

  // `tie_lsb`: how far an exact tie may be off; elsewhere nothing may be.
  void CompareS8(const std::vector<oracle::Accept>& want, int y, Tally* t, int tie_lsb) {
    const int8_t* got = S8(y);
    REQUIRE(want.size() == static_cast<size_t>(n_) * Channels(y));
    int excess = 0;  // largest distance beyond what is allowed there
    size_t at = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const int d = oracle::Distance(want[i], got[i]);
      const int e = d - (want[i].exact_tie ? tie_lsb : 0);
      if (e > excess) excess = e, at = i;
      t->max_lsb = std::max(t->max_lsb, d);
      t->off += d > 0;
      t->off_at_ties += d > 0 && want[i].exact_tie;
      t->exact_ties += want[i].exact_tie;
      t->near_ties += want[i].near_tie;
      t->saturated += want[i].lo == -128 || want[i].hi == 127;
    }
    t->values += want.size();
    CHECK_MESSAGE(excess <= 0, "value " << at << " (row " << at / Channels(y) << "): got "
                                        << int(got[at]) << ", oracle " << int(want[at].lo) << ".."
                                        << int(want[at].hi)
                                        << std::string(want[at].exact_tie ? " (exact tie)" : ""));
  }

  // |got - want| <= tol[i] for every value.
  void CompareF32(const std::vector<double>& want, const std::vector<double>& tol, int y, Tally* t) {
    const float* got = F32(y);
    REQUIRE(want.size() == static_cast<size_t>(n_) * Channels(y));
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double r = std::fabs(got[i] - want[i]) / tol[i];
      if (!(r <= worst)) worst = r, at = i;  // NaN counts as worst
    }
    t->values += want.size();
    t->max_ratio = std::max(t->max_ratio, worst);
    CHECK_MESSAGE(worst <= 1.0, "value " << at << ": got " << got[at] << ", oracle " << want[at]
                                         << " (tolerance " << tol[at] << ")");
  }

  // Float tolerance: `rel` of |want| plus `abs`.
  static std::vector<double> Tol(const std::vector<double>& want, double rel, double abs) {
    std::vector<double> t(want.size());
    for (size_t i = 0; i < want.size(); ++i) t[i] = rel * std::fabs(want[i]) + abs;
    return t;
  }

  void Check(const fb::Operator* op, Tally* t, int tie_lsb) {
    const auto* in = op->inputs();
    const int x = in->Get(0), y = op->outputs()->Get(0);
    const bool relu = op->activation() == fb::Activation::RELU;
    const size_t count = static_cast<size_t>(n_) * Channels(y);
    switch (op->opcode()) {
      case fb::OpCode::QUANTIZE: {
        if (x != m_->input_tensor()) {
          // A float activation to int8: round(x / s_y) + zp_y, no standardisation.
          const uint32_t c = Channels(x);
          const std::vector<float> zero(c, 0.0f), one(c, 1.0f);
          CompareS8(oracle::QuantizeS8(F32(x), n_, c, zero.data(), one.data(), Q(y)), y, t, tie_lsb);
          break;
        }
        const uint32_t f = m_->inputs()->size();
        std::vector<float> mean(f), stddev(f);
        for (uint32_t i = 0; i < f; ++i) {
          mean[i] = m_->inputs()->Get(i)->mean();
          stddev[i] = m_->inputs()->Get(i)->std();
        }
        if (Int8(y)) {
          CompareS8(oracle::QuantizeS8(rows_, n_, f, mean.data(), stddev.data(), Q(y)), y, t, tie_lsb);
        } else {
          const auto want = oracle::StandardizeF32(rows_, n_, f, mean.data(), stddev.data());
          std::vector<double> tol(want.size());
          for (size_t i = 0; i < want.size(); ++i) {
            const size_t k = i % f;  // the fold: x * (1/std) + (-mean/std)
            tol[i] = 1e-6 * (std::fabs(rows_[i] / stddev[k]) + std::fabs(mean[k] / stddev[k])) + 1e-30;
          }
          CompareF32(want, tol, y, t);
        }
        break;
      }
      case fb::OpCode::FULLY_CONNECTED: {
        const int w = in->Get(1), b = in->Get(2);
        const uint32_t ci = Channels(x), co = Channels(y);
        if (Int8(y)) {
          CompareS8(oracle::FullyConnectedS8(S8(x), n_, ci, Q(x), S8(w),
                                             T(w)->quantization()->scale()->data(),
                                             static_cast<const int32_t*>(Data(b)), co, Q(y), relu),
                    y, t, tie_lsb);
        } else {
          const auto want = oracle::FullyConnectedF32(F32(x), n_, ci, F32(w), F32(b), co, relu);
          auto tol = oracle::FullyConnectedMagnitude(F32(x), n_, ci, F32(w), F32(b), co);
          // float32 sums of `ci` products, in any order: ~ci roundings.
          for (double& v : tol) v = v * 1e-6 * (ci + 4) + 1e-30;
          CompareF32(want, tol, y, t);
        }
        break;
      }
      case fb::OpCode::LOGISTIC:
      case fb::OpCode::TANH: {
        const bool logistic = op->opcode() == fb::OpCode::LOGISTIC;
        if (Int8(y)) {
          // The fixed output quantization of the schema, checked here
          // because the oracle assumes it.
          CHECK(Q(y).scale == (logistic ? 1.0f / 256 : 1.0f / 128));
          CHECK(Q(y).zero_point == (logistic ? -128 : 0));
          CompareS8(logistic ? oracle::LogisticS8(S8(x), count, Q(x)) : oracle::TanhS8(S8(x), count, Q(x)),
                    y, t, tie_lsb);
        } else {
          std::vector<double> want(count);
          const float* v = F32(x);
          for (size_t i = 0; i < count; ++i)
            want[i] = logistic ? 1.0 / (1.0 + std::exp(-static_cast<double>(v[i]))) : std::tanh(static_cast<double>(v[i]));
          // The kernels' own exp / tanh approximations: ~2e-7 absolute.
          CompareF32(want, Tol(want, 0, 1e-6), y, t);
        }
        break;
      }
      case fb::OpCode::MUL:
      case fb::OpCode::ADD: {
        const bool mul = op->opcode() == fb::OpCode::MUL;
        const int b = in->Get(1);
        if (Int8(y)) {
          CompareS8(mul ? oracle::MulS8(S8(x), Q(x), S8(b), Q(b), count, Q(y))
                        : oracle::AddS8(S8(x), Q(x), S8(b), Q(b), count, Q(y)),
                    y, t, tie_lsb);
        } else {
          std::vector<double> want(count), tol(count);
          const float *u = F32(x), *v = F32(b);
          for (size_t i = 0; i < count; ++i) {
            want[i] = mul ? static_cast<double>(u[i]) * v[i] : static_cast<double>(u[i]) + v[i];
            tol[i] = 1e-7 * (mul ? std::fabs(want[i]) : std::fabs(u[i]) + std::fabs(v[i])) + 1e-38;
          }
          CompareF32(want, tol, y, t);
        }
        break;
      }
      case fb::OpCode::ATTENTION_POOL: {
        const uint32_t k = in->size() / 2, c = Channels(y);
        if (Int8(y)) {
          std::vector<const int8_t*> s, v;
          std::vector<oracle::Quant> sq, vq;
          for (uint32_t j = 0; j < k; ++j) {
            s.push_back(S8(in->Get(j)));
            sq.push_back(Q(in->Get(j)));
            v.push_back(S8(in->Get(k + j)));
            vq.push_back(Q(in->Get(k + j)));
          }
          CompareS8(oracle::AttentionPoolS8(s, sq, v, vq, n_, c, Q(y)), y, t, tie_lsb);
        } else {
          std::vector<const float*> s, v;
          for (uint32_t j = 0; j < k; ++j) {
            s.push_back(F32(in->Get(j)));
            v.push_back(F32(in->Get(k + j)));
          }
          const auto want = oracle::AttentionPoolF32(s, v, n_, c);
          std::vector<double> tol(want.size());
          for (size_t i = 0; i < want.size(); ++i) {
            double mag = 0;  // a convex combination: error relative to the largest value
            for (uint32_t j = 0; j < k; ++j) mag = std::max(mag, std::fabs(double(v[j][i])));
            tol[i] = 1e-6 * (k + 4) * mag + 1e-30;
          }
          CompareF32(want, tol, y, t);
        }
        break;
      }
      case fb::OpCode::SOFTMAX: {
        const auto want = oracle::SoftmaxF32(F32(x), n_, Channels(x));
        CompareF32(want, Tol(want, 1e-5, 1e-7), y, t);
        break;
      }
      case fb::OpCode::CONCAT: {
        std::vector<uint32_t> channels;
        for (uint32_t k = 0; k < in->size(); ++k) channels.push_back(Channels(in->Get(k)));
        if (Int8(y)) {
          std::vector<const int8_t*> v;
          std::vector<oracle::Quant> q;
          for (uint32_t k = 0; k < in->size(); ++k) v.push_back(S8(in->Get(k))), q.push_back(Q(in->Get(k)));
          CompareS8(oracle::ConcatS8(v, q, channels, n_, Q(y)), y, t, tie_lsb);
        } else {
          std::vector<const float*> v;
          for (uint32_t k = 0; k < in->size(); ++k) v.push_back(F32(in->Get(k)));
          const auto want = oracle::ConcatF32(v, channels, n_);
          CompareF32(want, Tol(want, 0.0, 1e-30), y, t);  // a copy: exact
        }
        break;
      }
      case fb::OpCode::RESHAPE: {
        // The same values under another per-row shape: a copy, exact.
        CHECK(Channels(x) == Channels(y));
        if (Int8(y)) {
          CHECK(Q(y).scale == Q(x).scale);
          CHECK(Q(y).zero_point == Q(x).zero_point);
          std::vector<oracle::Accept> want(count);
          for (size_t i = 0; i < count; ++i) want[i].lo = want[i].hi = S8(x)[i];
          CompareS8(want, y, t, 0);
        } else {
          const std::vector<double> want(F32(x), F32(x) + count);
          CompareF32(want, Tol(want, 0.0, 1e-30), y, t);
        }
        break;
      }
      case fb::OpCode::EMBEDDING_BAG: {
        const fb::Tensor* table = T(in->Get(1));
        const uint32_t length = Channels(x), width = Channels(y);
        const uint32_t vocab = static_cast<uint32_t>(table->shape()->Get(0));
        const int64_t* ids = static_cast<const int64_t*>(Data(x));
        // The table as real values: float, or int8 row-wise.
        std::vector<double> rows(static_cast<size_t>(vocab) * width);
        for (size_t i = 0; i < rows.size(); ++i) {
          if (table->dtype() == fb::DType::FLOAT32) {
            rows[i] = static_cast<const float*>(Data(in->Get(1)))[i];
          } else {
            const fb::Quantization* q = table->quantization();
            const size_t r = i / width;
            const int zp = q->zero_point() && q->zero_point()->size() ? q->zero_point()->Get(r) : 0;
            rows[i] = double(q->scale()->Get(r)) * (static_cast<const int8_t*>(Data(in->Get(1)))[i] - zp);
          }
        }
        const bool mean = op->combiner() == fb::Combiner::MEAN;
        const auto want = oracle::EmbeddingBagF32(ids, n_, length, rows.data(), width, mean);
        // A float sum of `length` terms: error relative to the sum of |terms|.
        std::vector<double> tol(want.size(), 1e-30);
        for (uint32_t r = 0; r < n_; ++r)
          for (uint32_t l = 0; l < length; ++l) {
            const int64_t id = ids[static_cast<size_t>(r) * length + l];
            REQUIRE((id >= -1 && id < vocab));
            for (uint32_t k = 0; id >= 0 && k < width; ++k)
              tol[static_cast<size_t>(r) * width + k] += 1e-6 * (length + 1) *
                                                         std::fabs(rows[static_cast<size_t>(id) * width + k]);
          }
        CompareF32(want, tol, y, t);
        break;
      }
      case fb::OpCode::DEQUANTIZE: {
        const auto want = oracle::DequantizeS8(S8(x), count, Q(x));
        CompareF32(want, Tol(want, 2.0 / (1 << 24), 1e-38), y, t);
        break;
      }
    }
  }

  const fb::Model* m_;
  mtan_model* rt_;
  const float* rows_;
  uint32_t n_;
};

// Loads `file` (written without memory reuse) on `backend`, runs all tasks
// on `rows` in one batch and checks every operator (XNNPACK: with its
// documented tie rounding).
std::map<fb::OpCode, Tally> CheckModel(const std::vector<uint8_t>& file,
                                       const std::vector<float>& rows, uint32_t n,
                                       mtan_backend backend,
                                       const std::vector<uint8_t>& tensor_input = {}) {
  const std::map<fb::OpCode, int> tie_lsb =
      backend != MTAN_BACKEND_REFERENCE ? kXnnpackTieLsb : std::map<fb::OpCode, int>{};
  test::Loaded rt(file, n, backend);
  REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
  std::vector<float> out;
  std::string error;
  REQUIRE_MESSAGE(rt.rt.Run(rows.data(), n, MTAN_ALL_TASKS, &out, &error, tensor_input) == MTAN_OK,
                  error);
  const host::ModelBytes bytes(file);
  auto tally = Walk(bytes, rt.model, rows.data(), n).CheckAll(tie_lsb);
  for (const auto& [code, t] : tally)
    MESSAGE(std::string(host::BackendName(backend)) << " "
            << Name(code) << ": " << t.values << " values, " << t.exact_ties << " exact ties, "
            << t.near_ties << " near ties, " << t.saturated << " saturated; " << t.off
            << " off (" << t.off_at_ties << " at exact ties) by up to " << t.max_lsb
            << " LSB; float error " << t.max_ratio << " of tolerance");
  return tally;
}

// The default backend is XNNPACK's but for the int8 fully-connected layers,
// which run on the VNNI kernels where the CPU has them.
constexpr mtan_backend kBackends[] = {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_XNNPACK,
                                      MTAN_BACKEND_DEFAULT};

// Small graphs written directly in the schema's terms: the model input is
// quantized by QUANTIZE (mean/std per feature), anything int8 that a task
// returns is dequantized first.
class Graph {
 public:
  Graph(const std::vector<float>& mean, const std::vector<float>& stddev) {
    m_.buffers.push_back(std::make_unique<fb::BufferT>());
    for (size_t i = 0; i < mean.size(); ++i) {
      auto in = std::make_unique<fb::InputT>();
      in->name = "f" + std::to_string(i);
      in->mean = mean[i];
      in->std = stddev[i];
      m_.inputs.push_back(std::move(in));
    }
    m_.input_tensor = Act(fb::DType::FLOAT32, static_cast<int>(mean.size()), {});
  }
  explicit Graph(int features) : Graph(std::vector<float>(features, 0.0f), std::vector<float>(features, 1.0f)) {}

  int Act(fb::DType dtype, int channels, oracle::Quant q) {
    auto t = std::make_unique<fb::TensorT>();
    t->name = "t" + std::to_string(m_.tensors.size());
    t->dtype = dtype;
    t->shape = {channels};
    if (dtype == fb::DType::INT8) {
      t->quantization = std::make_unique<fb::QuantizationT>();
      t->quantization->scale = {q.scale};
      t->quantization->zero_point = {q.zero_point};
    }
    m_.tensors.push_back(std::move(t));
    return static_cast<int>(m_.tensors.size()) - 1;
  }
  int S8(int channels, oracle::Quant q) { return Act(fb::DType::INT8, channels, q); }
  int F32(int channels) { return Act(fb::DType::FLOAT32, channels, {}); }

  int Quantize(oracle::Quant q) {
    const int y = S8(static_cast<int>(m_.inputs.size()), q);
    Op(fb::OpCode::QUANTIZE, {m_.input_tensor}, y);
    return y;
  }
  // QUANTIZE of float activation `x` to int8 at q.
  int Requantize(int x, oracle::Quant q) {
    const int y = S8(static_cast<int>(m_.tensors[x]->shape[0]), q);
    Op(fb::OpCode::QUANTIZE, {x}, y);
    return y;
  }
  int Standardize() {
    const int y = F32(static_cast<int>(m_.inputs.size()));
    Op(fb::OpCode::QUANTIZE, {m_.input_tensor}, y);
    return y;
  }
  // int8 weights [out][in] with per-channel scales, int32 bias.
  int Fc(int x, const std::vector<int8_t>& w, const std::vector<float>& w_scales,
         const std::vector<int32_t>& bias, oracle::Quant y_q, bool relu) {
    const int out = static_cast<int>(bias.size()), in = static_cast<int>(w.size()) / out;
    const int wt = Constant(fb::DType::INT8, {out, in}, w.data(), w.size());
    m_.tensors[wt]->quantization = std::make_unique<fb::QuantizationT>();
    m_.tensors[wt]->quantization->scale = w_scales;
    m_.tensors[wt]->quantization->zero_point = std::vector<int32_t>(out, 0);
    const int bt = Constant(fb::DType::INT32, {out}, bias.data(), bias.size() * 4);
    const int y = S8(out, y_q);
    Op(fb::OpCode::FULLY_CONNECTED, {x, wt, bt}, y, relu);
    return y;
  }
  // int8 tensor `x` (scale 1 codes) -> codes x[first .. first + n) exactly,
  // at quantization q: an FC whose multiplier is exactly 1 and whose bias
  // cancels q's zero point. How the hand graphs give a two-input operator
  // independent inputs with their own scales.
  int Select(int x, int first, int n, oracle::Quant q) {
    const int in = static_cast<int>(m_.tensors[x]->shape[0]);
    std::vector<int8_t> w(static_cast<size_t>(n) * in, 0);
    for (int o = 0; o < n; ++o) w[static_cast<size_t>(o) * in + first + o] = 1;
    return Fc(x, w, std::vector<float>(n, q.scale), std::vector<int32_t>(n, -q.zero_point), q, false);
  }
  // Elementwise: y has x's per-row shape (any rank).
  int Unary(fb::OpCode code, int x) {
    const bool s8 = m_.tensors[x]->dtype == fb::DType::INT8;
    const oracle::Quant q = code == fb::OpCode::LOGISTIC ? oracle::Quant{1.0f / 256, -128}
                                                         : oracle::Quant{1.0f / 128, 0};
    const int y = s8 && code != fb::OpCode::DEQUANTIZE ? S8(1, q) : F32(1);
    m_.tensors[y]->shape = m_.tensors[x]->shape;
    Op(code, {x}, y);
    return y;
  }
  int Binary(fb::OpCode code, int a, int b, oracle::Quant q) {
    const int y = m_.tensors[a]->dtype == fb::DType::INT8 ? S8(1, q) : F32(1);
    m_.tensors[y]->shape = m_.tensors[a]->shape;
    Op(code, {a, b}, y);
    return y;
  }
  // x's values under the per-row shape `shape` (same dtype and quantization).
  int Reshape(int x, std::vector<int32_t> shape) {
    const fb::TensorT& xt = *m_.tensors[x];
    oracle::Quant q;
    if (xt.quantization) q = {xt.quantization->scale[0], xt.quantization->zero_point[0]};
    const int y = Act(xt.dtype, 1, q);
    m_.tensors[y]->shape = std::move(shape);
    Op(fb::OpCode::RESHAPE, {x}, y);
    return y;
  }
  int Pool(const std::vector<int>& scores, const std::vector<int>& values, oracle::Quant q) {
    const int c = m_.tensors[values[0]]->shape[0];
    const int y = m_.tensors[values[0]]->dtype == fb::DType::INT8 ? S8(c, q) : F32(c);
    std::vector<int32_t> in(scores.begin(), scores.end());
    in.insert(in.end(), values.begin(), values.end());
    Op(fb::OpCode::ATTENTION_POOL, in, y);
    return y;
  }
  int Concat(const std::vector<int>& inputs, oracle::Quant q) {
    int c = 0;
    for (int t : inputs) c += m_.tensors[t]->shape[0];
    const int y = m_.tensors[inputs[0]]->dtype == fb::DType::INT8 ? S8(c, q) : F32(c);
    Op(fb::OpCode::CONCAT, std::vector<int32_t>(inputs.begin(), inputs.end()), y);
    return y;
  }
  // A tensor input of int64 ids [length] per row.
  int Ids(const std::string& name, int length) {
    const int t = F32(length);
    tiny::MakeIdsInput(m_, t, name);
    return t;
  }
  // EMBEDDING_BAG of `ids` over the float table [rows, width].
  int EmbeddingBag(int ids, const std::vector<float>& table, int width, bool mean = false) {
    const int rows = static_cast<int>(table.size()) / width;
    return Bag(ids, Constant(fb::DType::FLOAT32, {rows, width}, table.data(), table.size() * 4), width, mean);
  }
  // ... over an int8 table with a scale and a zero point per row.
  int EmbeddingBagS8(int ids, const std::vector<int8_t>& table, const std::vector<float>& scales,
                     const std::vector<int32_t>& zps, int width, bool mean) {
    const int rows = static_cast<int>(table.size()) / width;
    const int tt = Constant(fb::DType::INT8, {rows, width}, table.data(), table.size());
    m_.tensors[tt]->quantization = std::make_unique<fb::QuantizationT>();
    m_.tensors[tt]->quantization->scale = scales;
    m_.tensors[tt]->quantization->zero_point = zps;
    return Bag(ids, tt, width, mean);
  }
  int Bag(int ids, int table, int width, bool mean) {
    const int y = F32(width);
    Op(fb::OpCode::EMBEDDING_BAG, {ids, table}, y);
    m_.operators.back()->combiner = mean ? fb::Combiner::MEAN : fb::Combiner::SUM;
    return y;
  }
  // A task returning `t` (dequantized first when int8).
  void Output(int t) {
    if (m_.tensors[t]->dtype == fb::DType::INT8) t = Unary(fb::OpCode::DEQUANTIZE, t);
    auto task = std::make_unique<fb::TaskT>();
    task->name = "task" + std::to_string(m_.tasks.size());
    task->kind = m_.tensors[t]->shape[0] == 1 ? fb::TaskKind::REGRESSION : fb::TaskKind::MULTICLASS;
    task->output = t;
    m_.tasks.push_back(std::move(task));
  }
  std::vector<uint8_t> Finish(uint32_t max_batch) { return host::FinishModel(m_, max_batch, false); }

 private:
  int Constant(fb::DType dtype, std::vector<int32_t> shape, const void* data, size_t bytes) {
    auto b = std::make_unique<fb::BufferT>();
    b->data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
    m_.buffers.push_back(std::move(b));
    const int t = Act(dtype, 0, {});
    m_.tensors[t]->shape = std::move(shape);
    m_.tensors[t]->buffer = static_cast<uint32_t>(m_.buffers.size() - 1);
    return t;
  }
  void Op(fb::OpCode code, std::vector<int32_t> inputs, int output, bool relu = false) {
    auto op = std::make_unique<fb::OperatorT>();
    op->opcode = code;
    op->inputs = std::move(inputs);
    op->outputs = {output};
    op->activation = relu ? fb::Activation::RELU : fb::Activation::NONE;
    m_.operators.push_back(std::move(op));
  }

  fb::ModelT m_;
};

// Rows of integer features in [lo, hi]: with QUANTIZE at scale 1 and zero
// point 0 they are the int8 codes the next operator reads, exactly.
std::vector<float> IntegerRows(std::mt19937& rng, uint32_t rows, int features, int lo = -128,
                               int hi = 127) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> x(static_cast<size_t>(rows) * features);
  for (float& v : x) v = static_cast<float>(d(rng));
  // First rows at the limits: saturation on both sides.
  for (int i = 0; i < features && rows >= 2; ++i) {
    x[i] = static_cast<float>(hi);
    x[features + i] = static_cast<float>(i % 2 ? lo : hi);
  }
  return x;
}

std::vector<int8_t> RandomWeights(std::mt19937& rng, size_t n, int limit) {
  std::uniform_int_distribution<int> d(-limit, limit);
  std::vector<int8_t> w(n);
  for (auto& v : w) v = static_cast<int8_t>(d(rng));
  return w;
}

}  // namespace

TEST_CASE("oracle: the rounding rule itself") {
  // Ties to even, the zero point after rounding, the clamp, ReLU's bound.
  CHECK(oracle::Requantize(2.5, 0, -128, 127, 0).lo == 2);
  CHECK(oracle::Requantize(3.5, 0, -128, 127, 0).lo == 4);
  CHECK(oracle::Requantize(-2.5, 0, -128, 127, 0).lo == -2);
  CHECK(oracle::Requantize(-3.5, 0, -128, 127, 0).lo == -4);
  CHECK(oracle::Requantize(-3.5, 0, -128, 127, 0).exact_tie);
  CHECK(oracle::Requantize(2.5, 3, -128, 127, 0).lo == 5);
  CHECK(oracle::Requantize(2.4999, 0, -128, 127, 0).lo == 2);
  CHECK(oracle::Requantize(1e9, 0, -128, 127, 0).lo == 127);
  CHECK(oracle::Requantize(-1e9, 0, -128, 127, 0).lo == -128);
  CHECK(oracle::Requantize(-7.0, -3, -3, 127, 0).lo == -3);
  const oracle::Accept near = oracle::Requantize(2.5000001, 0, -128, 127, 1e-6);
  CHECK(near.near_tie);
  CHECK(near.lo == 2);
  CHECK(near.hi == 3);
  CHECK(oracle::Distance(near, 4) == 1);
  CHECK(oracle::Distance(near, 2) == 0);
}

TEST_CASE("oracle: every operator of an int8 MTAN, reference and XNNPACK") {
  fb::ModelT q = test::Int8Model(7);
  const auto file = host::FinishModel(q, 64, /*reuse_memory=*/false);
  std::vector<float> rows = test::RandomRows(31, 64);
  // Two rows far outside the calibration range: QUANTIZE saturates.
  for (int i = 0; i < 10; ++i) {
    rows[i] = 1e6f;
    rows[10 + i] = -1e6f;
  }
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    const auto tally = CheckModel(file, rows, 64, b);
    for (fb::OpCode c : {fb::OpCode::QUANTIZE, fb::OpCode::FULLY_CONNECTED, fb::OpCode::LOGISTIC,
                         fb::OpCode::TANH, fb::OpCode::MUL, fb::OpCode::ATTENTION_POOL,
                         fb::OpCode::DEQUANTIZE, fb::OpCode::SOFTMAX}) {
      CAPTURE(Name(c));
      REQUIRE(tally.count(c) == 1);
      CHECK(tally.at(c).values > 0);
    }
    CHECK(tally.at(fb::OpCode::QUANTIZE).saturated >= 20);
  }
}

TEST_CASE("oracle: every operator of a float MTAN, reference and XNNPACK") {
  fb::ModelT f = test::FloatModel(7);
  const auto file = host::FinishModel(f, 64, /*reuse_memory=*/false);
  const auto rows = test::RandomRows(32, 64);
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    const auto tally = CheckModel(file, rows, 64, b);
    CHECK(tally.size() == 7);  // all but DEQUANTIZE and ADD
  }
}

TEST_CASE("oracle: FULLY_CONNECTED int8 ties go to even; zero points, ReLU, saturation") {
  std::mt19937 rng(41);
  const int in = 24, out = 16;
  const uint32_t n = 48;
  // Exact arithmetic: input scale 1, power-of-two weight and output scales,
  // so the multiplier is 2^-k and every odd multiple of 2^(k-1) is a tie.
  Graph g(in);
  const int x = g.Quantize({1.0f, 0});
  std::vector<float> pow2(out);
  for (int o = 0; o < out; ++o) pow2[o] = std::ldexp(1.0f, -1 - o % 4);
  std::uniform_int_distribution<int> bd(-300, 300);
  std::vector<int32_t> bias(out);
  for (auto& b : bias) b = bd(rng);
  g.Output(g.Fc(x, RandomWeights(rng, in * out, 5), pow2, bias, {4.0f, 3}, false));
  g.Output(g.Fc(x, RandomWeights(rng, in * out, 5), pow2, bias, {4.0f, -3}, true));
  // The input's zero point: QUANTIZE at zero point -5 (x + 5 is the code).
  const int x5 = g.Quantize({1.0f, -5});
  g.Output(g.Fc(x5, RandomWeights(rng, in * out, 5), pow2, bias, {2.0f, 7}, true));
  // Realistic scales (not exact): only near ties may go either way.
  std::vector<float> ws(out);
  std::uniform_real_distribution<float> sd(0.002f, 0.02f);
  for (float& s : ws) s = sd(rng);
  std::vector<int32_t> big(out);
  std::uniform_int_distribution<int> bigd(-20000, 20000);
  for (auto& b : big) b = bigd(rng);
  g.Output(g.Fc(x5, RandomWeights(rng, in * out, 127), ws, big, {0.05f, 3}, false));
  g.Output(g.Fc(x5, RandomWeights(rng, in * out, 127), ws, big, {0.05f, -128}, true));
  const auto file = g.Finish(n);
  const auto rows = IntegerRows(rng, n, in, -123, 127);
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    const Tally t = CheckModel(file, rows, n, b).at(fb::OpCode::FULLY_CONNECTED);
    CHECK(t.exact_ties > t.values / 25);  // the case really has ties
    CHECK(t.saturated > t.values / 20);
    CHECK(t.saturated < t.values / 2);
  }
}

TEST_CASE("oracle: QUANTIZE folds the standardisation exactly; ties go to even") {
  // Feature k: mean and std such that the fold is exact and (x - mean) / std
  // lands on ties; then realistic price / flag / count columns.
  const std::vector<float> mean = {0.25f, -1.5f, 0.0f, 50.0f, 0.5f, 3.0f, 1250.0f};
  const std::vector<float> stddev = {0.5f, 2.0f, 1.0f, 40.0f, 0.5f, 2.0f, 900.0f};
  std::mt19937 rng(42);
  const uint32_t n = 64;
  std::vector<float> rows(n * mean.size());
  std::uniform_int_distribution<int> half(-600, 600);
  std::lognormal_distribution<float> price(3.5f, 1.2f);
  std::uniform_real_distribution<float> u(-5000.0f, 5000.0f);
  for (uint32_t r = 0; r < n; ++r) {
    float* x = &rows[r * mean.size()];
    x[0] = half(rng) / 2.0f;             // (x - 0.25) * 2 / s: ties at every half
    x[1] = half(rng) / 4.0f;
    x[2] = half(rng) / 2.0f;
    x[3] = price(rng);
    x[4] = static_cast<float>(r % 2);
    x[5] = static_cast<float>(r % 9);
    x[6] = u(rng);
  }
  Graph g(mean, stddev);
  for (oracle::Quant q : {oracle::Quant{1.0f, 3}, oracle::Quant{0.5f, -7}, oracle::Quant{2.0f, 0},
                          oracle::Quant{1.0f / 37, -12}})
    g.Output(g.Quantize(q));
  g.Output(g.Standardize());
  const auto file = g.Finish(n);
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    const Tally t = CheckModel(file, rows, n, b).at(fb::OpCode::QUANTIZE);
    CHECK(t.exact_ties > 100);
    CHECK(t.saturated > 50);
  }
}

TEST_CASE("oracle: LOGISTIC and TANH int8 on every one of the 256 input codes") {
  // Feature i carries code i - 128: x = s (code - zp) quantizes back to it.
  for (oracle::Quant q : {oracle::Quant{0.06f, 7}, oracle::Quant{1.0f / 16, 0},
                          oracle::Quant{0.5f, -100}, oracle::Quant{0.004f, 20}}) {
    CAPTURE(q.scale);
    CAPTURE(q.zero_point);
    std::vector<float> rows(256);
    for (int i = 0; i < 256; ++i) rows[i] = q.scale * static_cast<float>(i - 128 - q.zero_point);
    Graph g(256);
    const int x = g.Quantize(q);
    g.Output(g.Unary(fb::OpCode::LOGISTIC, x));
    g.Output(g.Unary(fb::OpCode::TANH, x));
    const auto file = g.Finish(1);
    for (mtan_backend b : kBackends) {
      CAPTURE(b);
      // The input really holds all 256 codes.
      test::Loaded rt(file, 1, b);
      REQUIRE(rt.status == MTAN_OK);
      rt.Run(rows, 1, MTAN_ALL_TASKS);
      mtan_tensor_desc d;
      REQUIRE(mtan_tensor_get(rt.model, static_cast<uint32_t>(x), &d) == MTAN_OK);
      for (int i = 0; i < 256; ++i) REQUIRE(static_cast<const int8_t*>(d.data)[i] == i - 128);
      const auto tally = CheckModel(file, rows, 1, b);
      CHECK(tally.at(fb::OpCode::LOGISTIC).values == 256);
      CHECK(tally.at(fb::OpCode::TANH).values == 256);
    }
  }
}

TEST_CASE("oracle: MUL and ADD int8 on independent inputs: ties, zero points, saturation") {
  std::mt19937 rng(43);
  const int c = 32;
  const uint32_t n = 64;
  struct Params {
    oracle::Quant a, b, mul, add;
  };
  // Exact (power-of-two) parameters with ties, then realistic ones.
  for (const Params& p : {Params{{0.5f, -3}, {0.25f, 5}, {16.0f, 2}, {0.5f, -1}},
                          Params{{0.037f, -11}, {0.11f, 4}, {0.02f, 5}, {0.09f, -2}}}) {
    CAPTURE(p.a.scale);
    Graph g(2 * c);
    const int x = g.Quantize({1.0f, 0});
    const int a = g.Select(x, 0, c, p.a), b = g.Select(x, c, c, p.b);
    g.Output(g.Binary(fb::OpCode::MUL, a, b, p.mul));
    g.Output(g.Binary(fb::OpCode::ADD, a, b, p.add));
    const auto file = g.Finish(n);
    const auto rows = IntegerRows(rng, n, 2 * c);
    for (mtan_backend be : kBackends) {
      CAPTURE(be);
      const auto tally = CheckModel(file, rows, n, be);
      // The selections are exact copies (multiplier 1, no tie, no rounding).
      CHECK(tally.at(fb::OpCode::FULLY_CONNECTED).near_ties == 0);
      CHECK(tally.at(fb::OpCode::MUL).saturated > 0);
      CHECK(tally.at(fb::OpCode::ADD).saturated > 0);
      if (p.a.scale == 0.5f) {
        CHECK(tally.at(fb::OpCode::MUL).exact_ties > 20);
        CHECK(tally.at(fb::OpCode::ADD).exact_ties > 100);
      }
    }
  }
}

TEST_CASE("oracle: CONCAT int8 (each input requantized: ties, saturation, a plain copy) and float") {
  std::mt19937 rng(47);
  const uint32_t n = 64;
  const int c0 = 5, c1 = 16, c2 = 3;
  Graph g(c0 + c1 + c2);
  const int x = g.Quantize({1.0f, 0});
  // Input 0 at the output's quantization (a copy); input 1 at half the
  // output scale (multiplier 0.5: every odd q - zp is an exact tie); input 2
  // at 8x (saturates).
  const oracle::Quant yq{0.5f, 3};
  const int a = g.Select(x, 0, c0, yq);
  const int b = g.Select(x, c0, c1, {0.25f, -7});
  const int d = g.Select(x, c0 + c1, c2, {4.0f, 1});
  g.Output(g.Concat({a, b, d}, yq));
  g.Output(g.Concat({d}, {0.037f, -2}));  // one input, realistic scales
  const int fa = g.Unary(fb::OpCode::DEQUANTIZE, a), fbt = g.Unary(fb::OpCode::DEQUANTIZE, b);
  g.Output(g.Concat({fbt, fa, fbt}, {}));  // float, an input twice
  const auto file = g.Finish(n);
  const auto rows = IntegerRows(rng, n, c0 + c1 + c2);
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    const auto tally = CheckModel(file, rows, n, be);
    CHECK(tally.at(fb::OpCode::CONCAT).values == n * (c0 + c1 + c2 + c2 + c1 + c0 + c1));
    CHECK(tally.at(fb::OpCode::CONCAT).exact_ties > 50);
    CHECK(tally.at(fb::OpCode::CONCAT).saturated > 0);
    CHECK(tally.at(fb::OpCode::CONCAT).off == 0);
  }
}

TEST_CASE("oracle: RESHAPE to [H, W, C] rows, elementwise operators on them, and back (int8 and float)") {
  std::mt19937 rng(48);
  const uint32_t n = 24;
  const int h = 2, w = 3, c = 4, e = h * w * c;
  Graph g(2 * e);
  const int x = g.Quantize({1.0f, 0});
  const int a = g.Reshape(g.Select(x, 0, e, {0.05f, 2}), {h, w, c});
  const int b = g.Reshape(g.Select(x, e, e, {0.03f, -5}), {h, w, c});
  const int s = g.Unary(fb::OpCode::LOGISTIC, a);
  const int t = g.Unary(fb::OpCode::TANH, b);
  const int p = g.Binary(fb::OpCode::MUL, s, t, {1.0f / 128, 0});
  const int q = g.Binary(fb::OpCode::ADD, p, g.Reshape(g.Select(x, 0, e, {0.02f, 0}), {h, w, c}),
                         {0.03f, 1});
  g.Output(g.Reshape(q, {e}));
  g.Output(g.Reshape(g.Reshape(a, {w, h * c}), {e}));  // rank 3 -> 2 -> 1, int8 copies
  // Float: dequantized [H, W, C] rows through the float kernels.
  const int fa = g.Unary(fb::OpCode::DEQUANTIZE, a), fb_ = g.Unary(fb::OpCode::DEQUANTIZE, b);
  const int fp = g.Binary(fb::OpCode::MUL, g.Unary(fb::OpCode::LOGISTIC, fa),
                          g.Unary(fb::OpCode::TANH, fb_), {});
  g.Output(g.Reshape(g.Binary(fb::OpCode::ADD, fp, fa, {}), {e}));
  const auto file = g.Finish(n);
  const auto rows = IntegerRows(rng, n, 2 * e);
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    const auto tally = CheckModel(file, rows, n, be);
    CHECK(tally.at(fb::OpCode::RESHAPE).values == n * e * 7);
    CHECK(tally.at(fb::OpCode::RESHAPE).off == 0);
    CHECK(tally.at(fb::OpCode::MUL).values == n * e * 2);
    CHECK(tally.at(fb::OpCode::ADD).values == n * e * 2);
  }
  // What mtan_tensor_get reports of a [2, 3, 4] activation.
  test::Loaded rt(file, n, MTAN_BACKEND_REFERENCE);
  REQUIRE(rt.status == MTAN_OK);
  mtan_tensor_desc d;
  REQUIRE(mtan_tensor_get(rt.model, static_cast<uint32_t>(a), &d) == MTAN_OK);
  CHECK(d.rank == 3);
  CHECK(d.shape[0] == 2);
  CHECK(d.shape[1] == 3);
  CHECK(d.shape[2] == 4);
  CHECK(d.shape[3] == 0);
  CHECK(d.channels == static_cast<uint32_t>(e));
}

TEST_CASE("oracle: EMBEDDING_BAG sum and mean, float and row-wise int8 tables, padding, and its int8 reader") {
  std::mt19937 rng(49);
  const uint32_t n = 40;
  const int length = 6, vocab = 9, width = 5;
  Graph g(3);
  g.Output(g.Standardize());
  const int ids = g.Ids("viewed", length);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> table(vocab * width);
  for (float& v : table) v = normal(rng);
  const int bag = g.EmbeddingBag(ids, table, width);
  g.Output(bag);
  g.Output(g.EmbeddingBag(ids, table, width, /*mean=*/true));
  // Its float output quantized for an int8 reader (QUANTIZE of an activation).
  g.Output(g.Unary(fb::OpCode::LOGISTIC, g.Requantize(bag, {0.04f, 3})));
  // Row-wise int8 tables: codes at every extreme, zero points on both sides.
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> q(vocab * width);
  for (auto& c : q) c = static_cast<int8_t>(code(rng));
  q[0] = -128, q[1] = 127;
  std::vector<float> scales(vocab);
  std::vector<int32_t> zps(vocab);
  for (int r = 0; r < vocab; ++r) scales[r] = 0.01f * (r + 1), zps[r] = (r % 2 ? 1 : -1) * 10 * r;
  g.Output(g.EmbeddingBagS8(ids, q, scales, zps, width, false));
  g.Output(g.EmbeddingBagS8(ids, q, scales, zps, width, true));
  const auto file = g.Finish(n);
  // Ids in -1..vocab-1 (-1 pads), row 0 all padding, row 1 one id repeated.
  std::uniform_int_distribution<int> id(-1, vocab - 1);
  std::vector<int64_t> v(static_cast<size_t>(n) * length);
  for (auto& x : v) x = id(rng);
  for (int l = 0; l < length; ++l) v[l] = -1, v[length + l] = vocab - 1;
  const std::vector<uint8_t> bytes(reinterpret_cast<const uint8_t*>(v.data()),
                                   reinterpret_cast<const uint8_t*>(v.data() + v.size()));
  const auto rows = IntegerRows(rng, n, 3);
  for (mtan_backend be : kBackends) {
    CAPTURE(be);
    const auto tally = CheckModel(file, rows, n, be, bytes);
    CHECK(tally.at(fb::OpCode::EMBEDDING_BAG).values == 4 * n * width);
    CHECK(tally.at(fb::OpCode::QUANTIZE).values == n * (3 + width));
    CHECK(tally.at(fb::OpCode::QUANTIZE).off == 0);
  }
}

TEST_CASE("oracle: ATTENTION_POOL int8 and float, ties from equal scores") {
  std::mt19937 rng(44);
  const int t = 4, c = 8;
  const uint32_t n = 40;
  const int f = t * (1 + c);
  Graph g(f);
  const int x = g.Quantize({1.0f, 0});
  std::vector<int> scores, values, fscores, fvalues;
  for (int s = 0; s < t; ++s) {
    // Power-of-two scales: equal scores give weights of exactly 1/4.
    scores.push_back(g.Select(x, s, 1, {s < 2 ? 0.125f : 0.03f, s - 2}));
    values.push_back(g.Select(x, t + s * c, c, {0.25f, 3 - s}));
  }
  g.Output(g.Pool(scores, values, {0.25f, -1}));
  g.Output(g.Pool({scores[0], scores[1]}, {values[0], values[1]}, {0.0625f, 0}));
  // The float kernel on dequantized copies.
  for (int s = 0; s < t; ++s) {
    fscores.push_back(g.Unary(fb::OpCode::DEQUANTIZE, scores[s]));
    fvalues.push_back(g.Unary(fb::OpCode::DEQUANTIZE, values[s]));
  }
  g.Output(g.Pool(fscores, fvalues, {}));
  const auto file = g.Finish(n);
  auto rows = IntegerRows(rng, n, f);
  // Half the rows with every score 0 (code = its zero point): softmax
  // weights of exactly 1/4 (or 1/2).
  for (uint32_t r = 0; r < n; r += 2)
    for (int s = 0; s < t; ++s) rows[r * f + s] = static_cast<float>(s - 2);
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    const auto tally = CheckModel(file, rows, n, b);
    CHECK(tally.at(fb::OpCode::ATTENTION_POOL).exact_ties > 10);
  }
}

TEST_CASE("oracle: float SOFTMAX, LOGISTIC, TANH, MUL and ADD far from zero") {
  const int c = 6;
  const uint32_t n = 3;
  Graph g(std::vector<float>(2 * c, 0.0f), std::vector<float>(2 * c, 1.0f));
  const int x = g.Standardize();
  g.Output(g.Unary(fb::OpCode::SOFTMAX, x));
  const int sig = g.Unary(fb::OpCode::LOGISTIC, x), th = g.Unary(fb::OpCode::TANH, x);
  g.Output(sig);
  g.Output(th);
  // Two different inputs each, so that a kernel reading one twice fails.
  g.Output(g.Binary(fb::OpCode::MUL, x, th, {}));
  g.Output(g.Binary(fb::OpCode::ADD, x, sig, {}));
  const auto file = g.Finish(n);
  const std::vector<float> rows = {1000, 999, -5, 0, 0.5f, 0.25f, -88, 88, 1e-3f, -1e-3f, 20, -20,
                                   -1000, -1001, 3, 4, 1e18f, -1e18f, 9, -9, 0.1f, -0.1f, 60, -60,
                                   1e-3f, 0, 7, 7, 7, 7, 100, -100, 15, -15, 2, 1};
  for (mtan_backend b : kBackends) {
    CAPTURE(b);
    CHECK(CheckModel(file, rows, n, b).size() == 6);
  }
}
