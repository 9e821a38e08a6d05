// main() of every doctest binary in tests/ (see runner.h).
#include "runner.h"

int main(int argc, char** argv) { return mtan::test::RunDoctest(argc, argv); }
