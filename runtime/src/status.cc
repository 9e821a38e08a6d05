// Status names, the last-error message and the process-wide load lock.
#include <stdarg.h>
#include <stdio.h>

#include <atomic>

#include "internal.h"

namespace mtan {
namespace {
char g_message[512] = "no error";
std::atomic_flag g_lock = ATOMIC_FLAG_INIT;
}  // namespace

mtan_status SetError(mtan_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(g_message, sizeof(g_message), format, args);
  va_end(args);
  return status;
}

void GlobalLock() {
  while (g_lock.test_and_set(std::memory_order_acquire)) {
  }
}
void GlobalUnlock() { g_lock.clear(std::memory_order_release); }

}  // namespace mtan

extern "C" const char* mtan_last_error(void) { return mtan::g_message; }

extern "C" const char* mtan_status_string(mtan_status status) {
  switch (status) {
#define MTAN_CASE(s) case s: return #s;
    MTAN_CASE(MTAN_OK)
    MTAN_CASE(MTAN_ERROR_INVALID_ARGUMENT)
    MTAN_CASE(MTAN_ERROR_NOT_INITIALIZED)
    MTAN_CASE(MTAN_ERROR_TRUNCATED)
    MTAN_CASE(MTAN_ERROR_BAD_IDENTIFIER)
    MTAN_CASE(MTAN_ERROR_CHECKSUM)
    MTAN_CASE(MTAN_ERROR_VERSION)
    MTAN_CASE(MTAN_ERROR_MALFORMED)
    MTAN_CASE(MTAN_ERROR_LIMIT)
    MTAN_CASE(MTAN_ERROR_INDEX)
    MTAN_CASE(MTAN_ERROR_OPERATOR)
    MTAN_CASE(MTAN_ERROR_SHAPE)
    MTAN_CASE(MTAN_ERROR_BUFFER)
    MTAN_CASE(MTAN_ERROR_QUANTIZATION)
    MTAN_CASE(MTAN_ERROR_GRAPH)
    MTAN_CASE(MTAN_ERROR_TASK)
    MTAN_CASE(MTAN_ERROR_MEMORY_PLAN)
    MTAN_CASE(MTAN_ERROR_ARENA_TOO_SMALL)
    MTAN_CASE(MTAN_ERROR_BATCH)
    MTAN_CASE(MTAN_ERROR_INPUT_NOT_FINITE)
    MTAN_CASE(MTAN_ERROR_OUTPUT_TOO_SMALL)
    MTAN_CASE(MTAN_ERROR_UNSUPPORTED)
    MTAN_CASE(MTAN_ERROR_BACKEND)
    MTAN_CASE(MTAN_ERROR_SELF_TEST)
    MTAN_CASE(MTAN_ERROR_NO_GOLDEN_CASES)
#undef MTAN_CASE
  }
  return "MTAN_ERROR_UNKNOWN";
}
