// Backend of an MTAN_WITH_XNNPACK=OFF build: the reference kernels run
// everything, and asking for XNNPACK fails at load with a status.
#include "internal.h"

namespace mtan {

bool XnnpackAvailable() { return false; }
mtan_status XnnpackInit() { return MTAN_OK; }
bool XnnpackHandles(const OpState&) { return false; }
mtan_status XnnpackCreate(OpState*, XnnArena*, const char* name) {
  return SetError(MTAN_ERROR_UNSUPPORTED, "operator '%s': this build has no XNNPACK", name);
}
mtan_status XnnpackRun(OpState*, uint32_t, void*) {
  return SetError(MTAN_ERROR_UNSUPPORTED, "this build has no XNNPACK");
}
void XnnpackDelete(OpState*) {}

}  // namespace mtan
