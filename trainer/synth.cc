#include "synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "dataset.h"
#include "metrics.h"
#include "rng.h"

namespace mtan::trainer {
namespace {

using json = nlohmann::json;

constexpr const char* kClassNames[kSynthClasses] = {"fashion", "home", "electronics", "beauty",
                                                    "grocery"};
constexpr int kSines = 10;          // m in the MMoE recipe
constexpr double kClickScale = 2.0; // k: logit = k * standardised latent + b
constexpr double kPurchaseScale = 2.0;
constexpr double kCategoryScale = 1.5;
constexpr double kClickRate = 0.08;              // CTR
constexpr double kPurchaseGivenClickRate = 0.30; // conversion of clicks
constexpr double kSpendLogMedian = 4.0943445622;  // log(60)
constexpr double kSpendSignal = 0.6;              // std of E[log1p spend] around it
constexpr double kSpendNoise = 0.4;               // irreducible std in log space

double Round(double v, double step) { return std::round(v / step) * step; }
double Sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double NormalCdf(double v) { return 0.5 * std::erfc(-v / std::sqrt(2.0)); }

// One feature column: its name and how a raw value follows from a latent
// standard normal (and the generator, for count noise).
struct Column {
  const char* name;
  std::function<double(double, host::Rng&)> make;
  bool informative = true;
};

std::vector<Column> Columns() {
  auto lognormal = [](double mu, double sigma, double step) {
    return [=](double z, host::Rng&) { return std::max(step, Round(std::exp(mu + sigma * z), step)); };
  };
  auto poisson = [](double a, double b) {
    return [=](double z, host::Rng& rng) { return static_cast<double>(rng.Poisson(std::exp(a + b * z))); };
  };
  auto flag = [](double threshold) {
    return [=](double z, host::Rng&) { return z > threshold ? 1.0 : 0.0; };
  };
  return {
      // Prices and money: log-normal, in currency units with cents.
      {"item_price", lognormal(3.5, 1.0, 0.01)},
      {"avg_order_value", lognormal(4.0, 0.6, 0.01)},
      {"cart_value", lognormal(3.8, 0.9, 0.01)},
      {"last_order_value", lognormal(3.9, 0.8, 0.01)},
      {"max_price_viewed_30d", lognormal(4.5, 1.1, 0.01)},
      {"shipping_fee", lognormal(1.5, 0.5, 0.01)},
      // Ages.
      {"user_age", [](double z, host::Rng&) { return std::clamp(std::round(38.0 + 12.0 * z), 18.0, 90.0); }},
      {"account_age_days", lognormal(6.0, 1.2, 1.0)},
      // Counts: Poisson with a log-normal rate.
      {"sessions_7d", poisson(1.0, 0.6)},
      {"sessions_30d", poisson(2.2, 0.6)},
      {"page_views_7d", poisson(2.5, 0.8)},
      {"product_views_30d", poisson(3.0, 0.8)},
      {"cart_adds_30d", poisson(0.5, 0.8)},
      {"orders_90d", poisson(0.3, 0.7)},
      {"returns_180d", poisson(-1.0, 0.6)},
      {"reviews_written", poisson(-0.5, 0.9)},
      {"wishlist_items", poisson(0.8, 0.9)},
      {"coupons_used_90d", poisson(-0.3, 0.7)},
      {"searches_7d", poisson(1.5, 0.7)},
      {"support_tickets_90d", poisson(-1.5, 0.6)},
      {"items_in_cart", poisson(0.3, 0.7)},
      // Binary flags.
      {"is_mobile", flag(-0.5)},
      {"is_returning", flag(0.0)},
      {"is_member", flag(0.8)},
      {"has_coupon", flag(1.0)},
      {"newsletter_opt_in", flag(0.3)},
      {"free_shipping_eligible", flag(-0.2)},
      {"is_weekend", flag(0.57)},
      {"push_enabled", flag(0.4)},
      // Other continuous columns.
      {"discount_pct", [](double z, host::Rng&) { return std::clamp(std::round(20.0 + 15.0 * z), 0.0, 80.0); }},
      {"item_rating", [](double z, host::Rng&) { return std::clamp(Round(4.1 + 0.6 * z, 0.1), 1.0, 5.0); }},
      {"days_since_last_visit", lognormal(1.5, 1.2, 1.0)},
      {"session_duration_sec", lognormal(5.0, 1.0, 1.0)},
      {"hour_of_day", [](double z, host::Rng&) { return std::min(23.0, std::floor(24.0 * NormalCdf(z))); }},
      {"item_review_count", lognormal(3.0, 1.5, 1.0)},
      {"stock_level", lognormal(4.0, 1.0, 1.0)},
      {"distance_km", lognormal(2.0, 1.0, 0.1)},
      // Pure noise, unrelated to every task, at wild scales.
      {"noise_hash", [](double z, host::Rng&) { return std::round(5.0e4 + 1.0e4 * z); }, false},
      {"noise_uniform", [](double z, host::Rng&) { return Round(NormalCdf(z), 0.0001); }, false},
      {"noise_count", [](double, host::Rng& rng) { return static_cast<double>(rng.Poisson(3.0)); }, false},
      {"noise_amount", lognormal(8.0, 2.0, 0.01), false},
  };
}

// Orthonormal vectors (Gram-Schmidt on Gaussian draws) in R^dim.
std::vector<std::vector<double>> Orthonormal(int count, int dim, host::Rng& rng) {
  std::vector<std::vector<double>> out;
  while (static_cast<int>(out.size()) < count) {
    std::vector<double> v(dim);
    for (double& e : v) e = rng.Normal();
    for (const auto& u : out) {
      double dot = 0;
      for (int i = 0; i < dim; ++i) dot += v[i] * u[i];
      for (int i = 0; i < dim; ++i) v[i] -= dot * u[i];
    }
    double norm = 0;
    for (double e : v) norm += e * e;
    norm = std::sqrt(norm);
    if (norm < 1e-6) continue;
    for (double& e : v) e /= norm;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<double> Mix(double p, const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out(a.size());
  const double q = std::sqrt(std::max(0.0, 1.0 - p * p));
  for (size_t i = 0; i < a.size(); ++i) out[i] = p * a[i] + q * b[i];
  return out;
}

void Standardise(std::vector<double>* v) {
  double mean = 0, var = 0;
  for (double e : *v) mean += e;
  mean /= static_cast<double>(v->size());
  for (double e : *v) var += (e - mean) * (e - mean);
  const double sd = std::sqrt(var / static_cast<double>(v->size()));
  for (double& e : *v) e = sd > 0 ? (e - mean) / sd : 0.0;
}

// Bias b such that the mean of sigmoid(scale * s + b) * weight / mean(weight)
// equals `rate`, by bisection.
double SolveBias(const std::vector<double>& s, double scale, const std::vector<double>* weight,
                 double rate) {
  double lo = -30, hi = 30;
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    double num = 0, den = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const double w = weight ? (*weight)[i] : 1.0;
      num += w * Sigmoid(scale * s[i] + mid);
      den += w;
    }
    (num / den < rate ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// The latent tasks f[t] (click, purchase, category 0..4, spend).
constexpr int kLatentTasks = 2 + kSynthClasses + 1;
constexpr int kItemDim = 4;        // an item's latent vector
constexpr double kZipf = 1.05;     // item popularity ~ rank^-kZipf
// Weight of each id's effect in each latent task, in units of the dense
// score's standard deviation (before both are standardised together):
// brand and item drive every task (a product's category most), the user
// segment click and category, the store purchase and spend, and the
// recently viewed items' mean latent vector (a shopper's taste) click and
// purchase. The brand, shared by about 40 items each, is learned from far
// more rows than a tail item.
struct IdWeights {
  double brand, item, store, segment, recent;
};
constexpr IdWeights kIdWeights[kLatentTasks] = {
    {0.40, 0.30, 0.00, 0.35, 0.45},  // click
    {0.35, 0.30, 0.30, 0.20, 0.40},  // purchase
    {0.60, 0.50, 0.00, 0.30, 0.00},  // category 0..4
    {0.60, 0.50, 0.00, 0.30, 0.00},
    {0.60, 0.50, 0.00, 0.30, 0.00},
    {0.60, 0.50, 0.00, 0.30, 0.00},
    {0.60, 0.50, 0.00, 0.30, 0.00},
    {0.30, 0.30, 0.35, 0.00, 0.00},  // spend
};

// Draws the id columns into `d` and adds their effects to the latent
// scores f (then standardised again, so the rates and scales keep their
// meaning). Its own streams: the dense columns and their scores are those
// of the same seed without ids.
void AddIdEffects(const SynthOptions& o, SynthData* d, std::vector<std::vector<double>>* f) {
  host::Rng rng_const(o.seed * 0x9E3779B97F4A7C15ull + 4);
  host::Rng rng(o.seed * 0x9E3779B97F4A7C15ull + 5);
  const size_t n = static_cast<size_t>(o.rows), items = static_cast<size_t>(o.items);
  auto normals = [&](size_t count) {
    std::vector<double> v(count);
    for (double& e : v) e = rng_const.Normal();
    return v;
  };
  const std::vector<double> item_vec = normals(items * kItemDim);
  std::vector<int32_t> brand_of(items);
  for (int32_t& b : brand_of) b = static_cast<int32_t>(rng_const.Below(kSynthBrands));
  const std::vector<double> brand_fx = normals(kSynthBrands * kLatentTasks),
                            store_fx = normals(kSynthStores * kLatentTasks),
                            segment_fx = normals(kSynthSegments * kLatentTasks);
  // Per task, the direction an item's vector is read along (unit variance).
  std::vector<double> item_dir = normals(kLatentTasks * kItemDim), recent_dir = normals(2 * kItemDim);
  for (double& e : item_dir) e /= std::sqrt(static_cast<double>(kItemDim));
  for (double& e : recent_dir) e /= std::sqrt(static_cast<double>(kItemDim));
  std::vector<double> cumulative(items);
  double total = 0;
  for (size_t i = 0; i < items; ++i) cumulative[i] = total += std::pow(static_cast<double>(i + 1), -kZipf);
  auto draw_item = [&]() {
    const double u = rng.Uniform() * total;
    const size_t i = static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                         cumulative.begin());
    return static_cast<int32_t>(std::min(i, items - 1));
  };
  d->item.resize(n);
  d->brand.resize(n);
  d->store.resize(n);
  d->segment.resize(n);
  d->recent_offsets.assign(1, 0);
  for (size_t r = 0; r < n; ++r) {
    const int32_t it = draw_item();
    d->item[r] = it;
    d->brand[r] = brand_of[it];
    d->store[r] = static_cast<int32_t>(rng.Below(kSynthStores));
    d->segment[r] = static_cast<int32_t>(rng.Below(kSynthSegments));
    const int viewed = static_cast<int>(rng.Below(kSynthMaxRecent + 1));
    double taste[kItemDim] = {0, 0, 0, 0};
    for (int k = 0; k < viewed; ++k) {
      const int32_t v = draw_item();
      d->recent.push_back(v);
      for (int c = 0; c < kItemDim; ++c) taste[c] += item_vec[v * kItemDim + c] / viewed;
    }
    d->recent_offsets.push_back(static_cast<uint32_t>(d->recent.size()));
    for (int t = 0; t < kLatentTasks; ++t) {
      const IdWeights& w = kIdWeights[t];
      double item_score = 0, recent_score = 0;
      for (int c = 0; c < kItemDim; ++c) {
        item_score += item_vec[it * kItemDim + c] * item_dir[t * kItemDim + c];
        if (t < 2) recent_score += taste[c] * recent_dir[t * kItemDim + c];
      }
      (*f)[t][r] += w.brand * brand_fx[d->brand[r] * kLatentTasks + t] + w.item * item_score +
                    w.store * store_fx[d->store[r] * kLatentTasks + t] +
                    w.segment * segment_fx[d->segment[r] * kLatentTasks + t] + w.recent * recent_score;
    }
  }
  for (auto& ft : *f) Standardise(&ft);
}

}  // namespace

bool GenerateSynth(const SynthOptions& o, SynthData* data, std::string* error) {
  if (o.rows < 100 || o.rows > 50000000) {
    if (error) *error = "rows must be from 100 to 50,000,000";
    return false;
  }
  if (!(o.correlation >= -1.0 && o.correlation <= 1.0)) {
    if (error) *error = "correlation must be in [-1, 1]";
    return false;
  }
  if (o.categorical && (o.items < 100 || o.items > 1000000)) {
    if (error) *error = "items must be from 100 to 1,000,000";
    return false;
  }
  if (!(o.train_fraction > 0 && o.val_fraction > 0 && o.train_fraction + o.val_fraction < 1)) {
    if (error) *error = "train and val fractions must be positive and leave rows for test";
    return false;
  }
  SynthData d;
  d.options = o;
  d.rows = o.rows;
  d.train_end = static_cast<int64_t>(std::llround(o.rows * o.train_fraction));
  d.val_end = d.train_end + static_cast<int64_t>(std::llround(o.rows * o.val_fraction));
  const std::vector<Column> columns = Columns();
  const int nf = static_cast<int>(columns.size());
  for (const Column& c : columns) d.features.push_back(c.name);
  const size_t n = static_cast<size_t>(o.rows);

  // Independent streams: the dataset constants, the features, the labels.
  host::Rng rng_const(o.seed * 0x9E3779B97F4A7C15ull + 1);
  host::Rng rng_x(o.seed * 0x9E3779B97F4A7C15ull + 2);
  host::Rng rng_y(o.seed * 0x9E3779B97F4A7C15ull + 3);

  // Raw features. Engagement counts share a latent factor, as in real logs.
  d.x.resize(n * nf);
  for (size_t r = 0; r < n; ++r) {
    const double engagement = rng_x.Normal();
    for (int j = 0; j < nf; ++j) {
      double z = rng_x.Normal();
      if (j >= 8 && j <= 20) z = 0.5 * engagement + std::sqrt(0.75) * z;
      d.x[r * nf + j] = static_cast<float>(columns[j].make(z, rng_x));
    }
  }

  // x: the standardised informative features (as the CSV holds them).
  std::vector<int> informative;
  for (int j = 0; j < nf; ++j) {
    if (columns[j].informative) informative.push_back(j);
  }
  const int ni = static_cast<int>(informative.size());
  std::vector<double> mean(nf, 0), sd(nf, 0);
  for (size_t r = 0; r < n; ++r) {
    for (int j = 0; j < nf; ++j) mean[j] += d.x[r * nf + j];
  }
  for (int j = 0; j < nf; ++j) mean[j] /= static_cast<double>(n);
  for (size_t r = 0; r < n; ++r) {
    for (int j = 0; j < nf; ++j) {
      const double c = d.x[r * nf + j] - mean[j];
      sd[j] += c * c;
    }
  }
  for (int j = 0; j < nf; ++j) {
    sd[j] = std::sqrt(sd[j] / static_cast<double>(n));
    if (sd[j] == 0) sd[j] = 1;
  }

  // MMoE recipe: u1, u2 orthonormal, w1 = c u1, w2 = c (p u1 + sqrt(1-p^2) u2),
  // f = w'x + sum_i sin(alpha_i w'x + beta_i). Category and spend get their
  // own directions, mixed with u1 / u2 by the same P.
  const auto u = Orthonormal(8, ni, rng_const);
  std::vector<double> alpha(kSines), beta(kSines);
  for (int i = 0; i < kSines; ++i) {
    alpha[i] = rng_const.Normal();
    beta[i] = rng_const.Normal();
  }
  const double p = o.correlation;
  std::vector<std::vector<double>> dirs;  // click, purchase, category 0..4, spend
  dirs.push_back(u[0]);
  dirs.push_back(Mix(p, u[0], u[1]));
  std::vector<double> u01(ni);
  for (int i = 0; i < ni; ++i) u01[i] = (u[0][i] + u[1][i]) / std::sqrt(2.0);
  const std::vector<double> shared[kSynthClasses] = {
      u[0], u[1], u[0], u[1], u01};  // 2 and 3 are negated below
  for (int k = 0; k < kSynthClasses; ++k) {
    std::vector<double> s = shared[k];
    if (k == 2 || k == 3) {
      for (double& e : s) e = -e;
    }
    dirs.push_back(Mix(p, s, u[2 + k]));
  }
  dirs.push_back(Mix(p, u[1], u[7]));
  const int nd = static_cast<int>(dirs.size());

  std::vector<std::vector<double>> f(nd, std::vector<double>(n));
  for (size_t r = 0; r < n; ++r) {
    for (int t = 0; t < nd; ++t) {
      double s = 0;
      for (int i = 0; i < ni; ++i) {
        const int j = informative[i];
        s += dirs[t][i] * (d.x[r * nf + j] - mean[j]) / sd[j];
      }
      double v = s;
      for (int i = 0; i < kSines; ++i) v += std::sin(alpha[i] * s + beta[i]);
      f[t][r] = v;
    }
  }
  for (auto& ft : f) Standardise(&ft);
  if (o.categorical) AddIdEffects(o, &d, &f);

  const double b_click = SolveBias(f[0], kClickScale, nullptr, kClickRate);
  std::vector<double> pc(n);
  for (size_t r = 0; r < n; ++r) pc[r] = Sigmoid(kClickScale * f[0][r] + b_click);
  const double b_purchase = SolveBias(f[1], kPurchaseScale, &pc, kPurchaseGivenClickRate);
  const double class_bias[kSynthClasses] = {0.4, 0.2, 0.0, -0.2, -0.4};

  d.click.resize(n);
  d.purchase.resize(n);
  d.category.resize(n);
  d.spend.resize(n);
  d.p_click.resize(n);
  d.p_purchase.resize(n);
  d.p_category.resize(n * kSynthClasses);
  d.spend_log_mean.resize(n);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t r = 0; r < n; ++r) {
    const double p_pc = Sigmoid(kPurchaseScale * f[1][r] + b_purchase);
    d.p_click[r] = static_cast<float>(pc[r]);
    d.p_purchase[r] = static_cast<float>(pc[r] * p_pc);
    const bool click = rng_y.Bernoulli(pc[r]);
    const bool purchase = click && rng_y.Bernoulli(p_pc);
    d.click[r] = click;
    d.purchase[r] = purchase;
    // Category: argmax of the latent scores plus Gumbel noise, which makes
    // the true class probabilities softmax(scores).
    double logits[kSynthClasses], mx = -1e300;
    int best = 0;
    double best_v = -1e300;
    for (int k = 0; k < kSynthClasses; ++k) {
      logits[k] = kCategoryScale * f[2 + k][r] + class_bias[k];
      mx = std::max(mx, logits[k]);
      const double v = logits[k] + rng_y.Gumbel();
      if (v > best_v) {
        best_v = v;
        best = k;
      }
    }
    double z = 0;
    for (int k = 0; k < kSynthClasses; ++k) z += std::exp(logits[k] - mx);
    for (int k = 0; k < kSynthClasses; ++k) {
      d.p_category[r * kSynthClasses + k] = static_cast<float>(std::exp(logits[k] - mx) / z);
    }
    d.category[r] = static_cast<float>(best);
    // Spend: log-normal around a latent mean, observed for purchases only.
    const double log_mean = kSpendLogMedian + kSpendSignal * f[nd - 1][r];
    d.spend_log_mean[r] = static_cast<float>(log_mean);
    const double noise = rng_y.Normal();
    d.spend[r] = purchase ? static_cast<float>(std::max(0.01, Round(std::expm1(log_mean + kSpendNoise * noise), 0.01)))
                          : nan;
  }
  *data = std::move(d);
  return true;
}

std::string SynthSpecJson(const SynthData& d, bool dense_only) {
  json spec;
  spec["description"] = "mtan-data synth: synthetic e-commerce tasks (MMoE recipe)";
  if (d.options.categorical) {
    json features = d.features;
    if (!dense_only) {
      features.push_back({{"name", "item_id"}, {"kind", "categorical"},
                          {"vocabulary", {{"min_count", 2}}}, {"table", "items"}});
      features.push_back({{"name", "brand"}, {"kind", "categorical"}, {"ids", "string"},
                          {"hash_buckets", 1024}});
      features.push_back({{"name", "store"}, {"kind", "categorical"}, {"vocabulary", {{"min_count", 1}}}});
      features.push_back({{"name", "segment"}, {"kind", "categorical"}, {"vocabulary", {{"min_count", 1}}}});
      features.push_back({{"name", "recent_items"}, {"kind", "multi_hot"}, {"max_length", kSynthMaxRecent},
                          {"combiner", "mean"}, {"table", "items"}});
    }
    spec["features"] = features;
  }
  json tasks = json::array();
  tasks.push_back({{"name", "click"}, {"kind", "binary"}, {"label", "click"}});
  tasks.push_back({{"name", "purchase"}, {"kind", "binary"}, {"label", "purchase"}});
  json names = json::array();
  for (const char* c : kClassNames) names.push_back(c);
  tasks.push_back({{"name", "category"}, {"kind", "multiclass"}, {"label", "category"},
                   {"classes", kSynthClasses}, {"class_names", names}});
  tasks.push_back({{"name", "spend"}, {"kind", "regression"}, {"label", "spend"},
                   {"transform", "log1p"}});
  spec["tasks"] = tasks;
  return spec.dump(2) + "\n";
}

std::string SynthCeilingJson(const SynthData& d) {
  json out;
  out["generator"] = "mtan-data synth";
  out["seed"] = d.options.seed;
  out["rows"] = d.rows;
  out["correlation"] = d.options.correlation;
  if (d.options.categorical) {
    // How many test rows show an item the training rows never do (those
    // read the out-of-vocabulary row), and the mean recent list.
    std::vector<char> seen(static_cast<size_t>(d.options.items), 0);
    for (int64_t r = 0; r < d.train_end; ++r) seen[d.item[r]] = 1;
    int64_t unseen = 0;
    for (int64_t r = d.val_end; r < d.rows; ++r) unseen += !seen[d.item[r]];
    out["ids"] = {{"items", d.options.items}, {"brands", kSynthBrands}, {"stores", kSynthStores},
                  {"segments", kSynthSegments}, {"max_recent_items", kSynthMaxRecent},
                  {"test_rows_with_an_item_unseen_in_train",
                   static_cast<double>(unseen) / static_cast<double>(d.rows - d.val_end)},
                  {"mean_recent_items", static_cast<double>(d.recent.size()) / static_cast<double>(d.rows)}};
  }
  const int64_t bounds[4] = {0, d.train_end, d.val_end, d.rows};
  const char* names[3] = {"train", "val", "test"};
  for (int s = 0; s < 3; ++s) {
    const int64_t b = bounds[s], e = bounds[s + 1];
    json split;
    split["rows"] = e - b;
    int64_t clicks = 0, purchases = 0;
    std::vector<int64_t> classes(kSynthClasses, 0);
    for (int64_t r = b; r < e; ++r) {
      clicks += d.click[r] > 0.5f;
      purchases += d.purchase[r] > 0.5f;
      classes[static_cast<int>(d.category[r])]++;
    }
    split["click_positives"] = clicks;
    split["purchase_positives"] = purchases;
    split["spend_rows"] = purchases;
    split["category_counts"] = classes;
    out["splits"][names[s]] = split;
  }
  // Bayes scores: on the test rows (the ceiling), and on the val rows for
  // reference while tuning.
  auto bayes = [&](int64_t b, int64_t e) {
    const size_t n = static_cast<size_t>(e - b);
    json j;
    j["click"]["auc"] = host::Auc(&d.p_click[b], &d.click[b], n);
    j["click"]["logloss"] = host::LogLoss(&d.p_click[b], &d.click[b], n);
    j["purchase"]["auc"] = host::Auc(&d.p_purchase[b], &d.purchase[b], n);
    j["purchase"]["logloss"] = host::LogLoss(&d.p_purchase[b], &d.purchase[b], n);
    j["category"]["accuracy"] =
        host::Accuracy(&d.p_category[b * kSynthClasses], &d.category[b], n, kSynthClasses);
    j["category"]["macro_f1"] =
        host::MacroF1(&d.p_category[b * kSynthClasses], &d.category[b], n, kSynthClasses);
    std::vector<float> pred, label;
    for (int64_t r = b; r < e; ++r) {
      if (std::isnan(d.spend[r])) continue;
      pred.push_back(d.spend_log_mean[r]);
      label.push_back(static_cast<float>(std::log1p(static_cast<double>(d.spend[r]))));
    }
    j["spend"]["nmse"] = host::Nmse(pred.data(), label.data(), pred.size());
    j["spend"]["rmse"] = host::Rmse(pred.data(), label.data(), pred.size());
    j["spend"]["space"] = "log1p";
    return j;
  };
  const json test = bayes(d.val_end, d.rows);
  out["val_bayes"] = bayes(d.train_end, d.val_end);
  out["test"] = test;
  out["note"] =
      "Bayes scores: the metrics of the true probabilities / conditional means on the realised "
      "test labels; no model can do better in expectation.";
  return out.dump(2) + "\n";
}

namespace {

bool WriteCsv(const SynthData& d, const std::string& path, int64_t begin, int64_t end,
              std::string* error) {
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) {
    if (error) *error = path + ": cannot open for writing";
    return false;
  }
  fmt::memory_buffer buf;
  for (const std::string& name : d.features) fmt::format_to(std::back_inserter(buf), "{},", name);
  const bool ids = d.options.categorical;
  if (ids) fmt::format_to(std::back_inserter(buf), "item_id,brand,store,segment,recent_items,");
  fmt::format_to(std::back_inserter(buf), "click,purchase,category,spend\n");
  const size_t nf = d.features.size();
  bool ok = true;
  for (int64_t r = begin; r < end; ++r) {
    for (size_t j = 0; j < nf; ++j) fmt::format_to(std::back_inserter(buf), "{},", d.x[r * nf + j]);
    if (ids) {
      fmt::format_to(std::back_inserter(buf), "{},brand-{:04d},{},{},", 1000000 + d.item[r], d.brand[r],
                     d.store[r], d.segment[r]);
      for (uint32_t k = d.recent_offsets[r]; k < d.recent_offsets[r + 1]; ++k)
        fmt::format_to(std::back_inserter(buf), "{}{}", k == d.recent_offsets[r] ? "" : "|",
                       1000000 + d.recent[k]);
      buf.push_back(',');
    }
    fmt::format_to(std::back_inserter(buf), "{},{},{},", static_cast<int>(d.click[r]),
                   static_cast<int>(d.purchase[r]), kClassNames[static_cast<int>(d.category[r])]);
    if (!std::isnan(d.spend[r])) fmt::format_to(std::back_inserter(buf), "{}", d.spend[r]);
    buf.push_back('\n');
    if (buf.size() > (1 << 20) || r + 1 == end) {
      ok = ok && std::fwrite(buf.data(), 1, buf.size(), fp) == buf.size();
      buf.clear();
    }
  }
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok && error) *error = path + ": write error";
  return ok;
}

bool WriteText(const std::string& path, const std::string& text, std::string* error) {
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  bool ok = fp && std::fwrite(text.data(), 1, text.size(), fp) == text.size();
  if (fp) ok = (std::fclose(fp) == 0) && ok;
  if (!ok && error) *error = path + ": cannot write";
  return ok;
}

}  // namespace

bool WriteSynth(const SynthData& d, const std::string& dir, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    if (error) *error = dir + ": cannot create directory: " + ec.message();
    return false;
  }
  const std::string base = dir + "/";
  return WriteCsv(d, base + "train.csv", 0, d.train_end, error) &&
         WriteCsv(d, base + "val.csv", d.train_end, d.val_end, error) &&
         WriteCsv(d, base + "test.csv", d.val_end, d.rows, error) &&
         WriteText(base + "tasks.json", SynthSpecJson(d), error) &&
         (!d.options.categorical ||
          WriteText(base + "tasks_dense.json", SynthSpecJson(d, /*dense_only=*/true), error)) &&
         WriteText(base + "ceiling.json", SynthCeilingJson(d), error);
}

}  // namespace mtan::trainer
