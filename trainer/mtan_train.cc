// mtan-train: trains an MTAN (or a baseline) on CSV data and writes a
// float32 .mtan model, metrics.json and plots.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "train.h"

int main(int argc, char** argv) {
  try {
    mtan::trainer::TrainOptions o;
    CLI::App app{"mtan-train: train a multi-task attention network and export a float32 .mtan"};
    app.add_option("--train", o.train_csv, "Training CSV (with a header row)")->required();
    app.add_option("--val", o.val_csv, "Validation CSV: early stopping and model selection")->required();
    app.add_option("--spec", o.spec_path, "Task spec JSON (features and tasks)")->required();
    app.add_option("--out", o.out_model, "Output float32 model (.mtan)")->required();
    app.add_option("--test", o.test_csv,
                   "Optional test CSV, scored once after training (never used for selection)");
    app.add_option("--report-dir", o.report_dir,
                   "Where metrics.json and the PNG plots go (default: the directory of --out)");
    app.add_option("--predictions", o.predictions, "Write the test predictions (model space) to this CSV");
    app.add_option("--arch", o.arch, "mtan, mtan-mask, mtan-cross, shared-bottom or single")
        ->capture_default_str();
    auto* trunk = app.add_option("--trunk", o.trunk, "Trunk layer widths, e.g. 256,128")
                      ->delimiter(',')
                      ->capture_default_str();
    app.add_flag("--match-params", o.match_params,
                 "Scale the trunk so the parameter count matches mtan's (done for `single` "
                 "unless --trunk is given)");
    app.add_option("--mask-hidden", o.mask_hidden, "Hidden width of the feature-attention masks")
        ->capture_default_str();
    app.add_option("--task-width", o.task_width, "Width of each task layer z_t")->capture_default_str();
    app.add_option("--att-hidden", o.att_hidden, "Hidden width of cross-task attention")
        ->capture_default_str();
    app.add_option("--dropout", o.dropout, "Dropout after each ReLU of trunk and task layers")
        ->capture_default_str();
    app.add_option("--epochs", o.epochs, "Maximum epochs")->capture_default_str();
    app.add_option("--batch", o.batch, "Batch size")->capture_default_str();
    app.add_option("--lr", o.lr, "Adam learning rate")->capture_default_str();
    app.add_option("--weight-decay", o.weight_decay, "wd in the loss term wd * ||W||^2 (weights only)")
        ->capture_default_str();
    app.add_option("--embedding-l2", o.embedding_l2,
                   "l2 in l2 * sum of the squared embedding rows each row's id features read (tables "
                   "get no weight decay)")
        ->capture_default_str();
    app.add_option("--loss-weights", o.loss_weights, "equal, dwa or uncertainty")->capture_default_str();
    app.add_option("--dwa-temperature", o.dwa_temperature, "T of Dynamic Weight Average")
        ->capture_default_str();
    app.add_option("--patience", o.patience, "Stop after this many epochs without a better val score")
        ->capture_default_str();
    app.add_option("--lr-decay", o.lr_decay, "Multiply the learning rate by this after an epoch without improvement")
        ->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of initialisation and shuffling")->capture_default_str();
    app.add_option("--threads", o.threads, "Threads for libtorch and BLAS")->capture_default_str();
    app.add_option("--golden-rows", o.golden_rows, "Validation rows stored as a golden case (0: none)")
        ->capture_default_str();
    app.add_option("--max-batch", o.max_batch, "Default maximum batch stored in the model")
        ->capture_default_str();
    app.add_flag("--json", o.json, "Print the final report (metrics.json) on stdout");
    app.add_flag("--quiet", o.quiet, "No progress lines");
    bool no_plots = false;
    app.add_flag("--no-plots", no_plots, "Do not run gnuplot");
    CLI11_PARSE(app, argc, argv);
    o.trunk_given = trunk->count() > 0;
    o.plots = !no_plots;
    return mtan::trainer::RunTraining(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mtan-train: error: %s\n", e.what());
    return 1;
  }
}
