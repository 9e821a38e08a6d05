// mtan-bench: see bench.h, or run with --help.
#include <iostream>

#include "bench.h"

int main(int argc, char** argv) { return mtan::bench::BenchMain(argc, argv, std::cout, std::cerr); }
