#include "plots.h"

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

namespace mtan::trainer {

bool WritePlots(const nlohmann::json& report, const std::string& dir, std::string* note) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    *note = "gnuplot is not installed (apt-get install gnuplot-nox): no PNG plots";
    return false;
  }
  const auto& tasks = report["tasks"];
  const auto& epochs = report["epochs"];
  std::ofstream dat(dir + "/curves.dat");
  dat << "# epoch";
  for (const auto& t : tasks) dat << " loss_" << t["name"].get<std::string>();
  for (const auto& t : tasks) dat << " val_" << t["name"].get<std::string>() << "_" << t["primary"].get<std::string>();
  dat << "\n";
  for (const auto& e : epochs) {
    dat << e["epoch"].get<int>();
    for (const auto& t : tasks) dat << " " << e["train_loss"][t["name"].get<std::string>()].get<double>();
    for (const auto& t : tasks) {
      const auto& v = e["val"][t["name"].get<std::string>()][t["primary"].get<std::string>()];
      dat << " " << (v.is_null() ? std::string("NaN") : fmt::format("{}", v.get<double>()));
    }
    dat << "\n";
  }
  dat.close();
  const size_t T = tasks.size();
  std::string gp = fmt::format(
      "set terminal pngcairo size 1100,450 font 'sans,10'\n"
      "set output '{0}/curves.png'\n"
      "set multiplot layout 1,2 title '{1}: training curves (best epoch {2})'\n"
      "set xlabel 'epoch'\nset grid\nset key outside bottom center horizontal\n"
      "set ylabel 'training loss (per observed row)'\nset logscale y\n",
      dir, report["arch"].get<std::string>(), report["best_epoch"].get<int>());
  gp += "plot ";
  for (size_t t = 0; t < T; ++t) {
    gp += fmt::format("{}'{}/curves.dat' using 1:{} with linespoints title '{}'", t ? ", " : "", dir,
                      t + 2, tasks[t]["name"].get<std::string>());
  }
  gp += "\nunset logscale y\nset ylabel 'validation metric'\nplot ";
  for (size_t t = 0; t < T; ++t) {
    gp += fmt::format("{}'{}/curves.dat' using 1:{} with linespoints title '{} {}'", t ? ", " : "",
                      dir, T + t + 2, tasks[t]["name"].get<std::string>(),
                      tasks[t]["primary"].get<std::string>());
  }
  gp += "\nunset multiplot\n";
  if (report.contains("alpha")) {
    const auto& a = report["alpha"]["matrix"];
    std::ofstream adat(dir + "/alpha.dat");
    for (size_t t = 0; t < T; ++t) {
      // Columns: t s alpha; plotted with x = s, y = t.
      for (size_t s = 0; s < T; ++s) adat << t << " " << s << " " << a[t][s].get<double>() << "\n";
      adat << "\n";
    }
    adat.close();
    std::string tics;
    for (size_t t = 0; t < T; ++t) {
      tics += fmt::format("{}'{}' {}", t ? ", " : "", tasks[t]["name"].get<std::string>(), t);
    }
    gp += fmt::format(
        "reset\nset terminal pngcairo size 560,480 font 'sans,10'\n"
        "set output '{0}/alpha.png'\n"
        "set title 'cross-task attention {{/Symbol a}}[t,s] (validation mean)'\n"
        "set xlabel 'attends to task s'\nset ylabel 'task t'\n"
        "set xtics ({1})\nset ytics ({1})\nset yrange [{2}-0.5:-0.5]\nset xrange [-0.5:{2}-0.5]\n"
        "set cbrange [0:1]\nset palette defined (0 'white', 1 '#2166ac')\n"
        "plot '{0}/alpha.dat' using 2:1:3 with image notitle, "
        "'{0}/alpha.dat' using 2:1:(sprintf('%.2f',$3)) with labels notitle\n",
        dir, tics, T);
  }
  {
    std::ofstream script(dir + "/plots.gp");
    script << gp;
  }
  const std::string cmd = "gnuplot '" + dir + "/plots.gp' >'" + dir + "/plots.log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    *note = "gnuplot failed (see " + dir + "/plots.log): no PNG plots";
    return false;
  }
  return true;
}

}  // namespace mtan::trainer
