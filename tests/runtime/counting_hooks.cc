// A second implementation of runtime/src/platform.h, as a port would write
// one: single-threaded, with counters the test reads. platform_hooks_test
// links a runtime built with it (mtan_add_runtime) to check that the runtime
// reaches the platform only through these hooks, and releases the lock on
// every path.
#include "counting_hooks.h"

#include "platform.h"

namespace {
mtan_test_hook_counts g_counts;
int g_depth = 0;
char g_message[mtan::platform::kErrorMessageBytes] = "no error";
}  // namespace

namespace mtan::platform {

void LoadLockAcquire() {
  ++g_counts.acquired;
  if (++g_depth > g_counts.max_depth) g_counts.max_depth = g_depth;
}
void LoadLockRelease() {
  ++g_counts.released;
  --g_depth;
}
char* ErrorMessageBuffer() {
  ++g_counts.message_buffer_calls;
  return g_message;
}

}  // namespace mtan::platform

mtan_test_hook_counts mtan_test_hooks_counts() { return g_counts; }
const char* mtan_test_hooks_message() { return g_message; }
