// Status names, the last-error message (per thread) and the process-wide
// load lock, both through the platform hooks (platform.h).
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "platform.h"

namespace mtan {

mtan_status SetError(mtan_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(platform::ErrorMessageBuffer(), platform::kErrorMessageBytes, format, args);
  va_end(args);
  return status;
}

void GlobalLock() { platform::LoadLockAcquire(); }
void GlobalUnlock() { platform::LoadLockRelease(); }

}  // namespace mtan

extern "C" const char* mtan_last_error(void) { return mtan::platform::ErrorMessageBuffer(); }

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
    MTAN_CASE(MTAN_ERROR_BUSY)
    MTAN_CASE(MTAN_ERROR_NAME)
    MTAN_CASE(MTAN_ERROR_INPUT_ID)
#undef MTAN_CASE
  }
  return "MTAN_ERROR_UNKNOWN";
}
