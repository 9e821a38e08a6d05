// mtan-inspect M.mtan [--json]: see inspect.h.
#include <iostream>

#include "inspect.h"

int main(int argc, char** argv) {
  return mtan::inspect::InspectMain(argc, argv, std::cout, std::cerr);
}
