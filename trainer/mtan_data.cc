// mtan-data: writes the built-in synthetic e-commerce dataset.
//   mtan-data synth --out DIR [--rows N] [--correlation P] [--seed S] [--categorical [--items N]] [--json]
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "synth.h"

int main(int argc, char** argv) {
  try {
    CLI::App app{"mtan-data: datasets for mtan-train"};
    app.require_subcommand(1);
    CLI::App* synth = app.add_subcommand(
        "synth",
        "Synthetic e-commerce data (MMoE recipe) with its Bayes ceiling: writes train.csv, "
        "val.csv, test.csv (70/10/20), tasks.json and ceiling.json");
    mtan::trainer::SynthOptions opt;
    std::string out;
    bool as_json = false;
    synth->add_option("--out", out, "Output directory (created if missing)")->required();
    synth->add_option("--rows", opt.rows, "Total rows over the three splits")
        ->capture_default_str();
    synth->add_option("--correlation,-p", opt.correlation,
                      "Task correlation P (cosine of the click and purchase directions)")
        ->capture_default_str();
    synth->add_option("--seed", opt.seed, "Seed; the same seed gives the same bytes")
        ->capture_default_str();
    synth->add_flag("--categorical", opt.categorical,
                    "Also id columns: item_id (Zipf popularity), brand (strings), store, segment, "
                    "recent_items (0-20 ids per row, '|'-separated), with known effects on every "
                    "task; tasks.json lists them, tasks_dense.json is the same without them");
    synth->add_option("--items", opt.items, "Items with --categorical (100 to 1,000,000)")
        ->capture_default_str()
        ->needs("--categorical");
    synth->add_flag("--json", as_json, "Print ceiling.json to stdout instead of a summary");
    CLI11_PARSE(app, argc, argv);

    mtan::trainer::SynthData data;
    std::string error;
    if (!mtan::trainer::GenerateSynth(opt, &data, &error) ||
        !mtan::trainer::WriteSynth(data, out, &error)) {
      std::fprintf(stderr, "mtan-data: error: %s\n", error.c_str());
      return 1;
    }
    const std::string ceiling = mtan::trainer::SynthCeilingJson(data);
    if (as_json) {
      std::fputs(ceiling.c_str(), stdout);
      return 0;
    }
    const auto c = nlohmann::json::parse(ceiling);
    std::printf("mtan-data: wrote %s/{train,val,test}.csv, tasks.json, ceiling.json\n",
                out.c_str());
    std::printf("  %zu features, P = %.2f, seed %llu\n", data.features.size(), opt.correlation,
                static_cast<unsigned long long>(opt.seed));
    if (opt.categorical) {
      const auto& ids = c["ids"];
      std::printf("  id columns: item_id (%lld items), brand, store, segment, recent_items "
                  "(mean %.1f ids); %.1f%% of test rows show an item unseen in train\n",
                  static_cast<long long>(opt.items), ids["mean_recent_items"].get<double>(),
                  100.0 * ids["test_rows_with_an_item_unseen_in_train"].get<double>());
    }
    for (const char* s : {"train", "val", "test"}) {
      const auto& sp = c["splits"][s];
      std::printf("  %-5s %8lld rows  click+ %7lld  purchase+ %6lld  spend rows %6lld\n", s,
                  sp["rows"].get<long long>(), sp["click_positives"].get<long long>(),
                  sp["purchase_positives"].get<long long>(), sp["spend_rows"].get<long long>());
    }
    const auto& t = c["test"];
    std::printf("  Bayes ceiling on test: click AUC %.4f, purchase AUC %.4f, category acc %.4f, "
                "spend NMSE (log1p) %.4f\n",
                t["click"]["auc"].get<double>(), t["purchase"]["auc"].get<double>(),
                t["category"]["accuracy"].get<double>(), t["spend"]["nmse"].get<double>());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mtan-data: error: %s\n", e.what());
    return 1;
  }
}
