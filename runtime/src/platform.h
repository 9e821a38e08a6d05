// Platform hooks: the only things the runtime needs from the operating
// system. One file implements them for a target; the default,
// platforms/hooks/posix.cc, uses POSIX threads. A port to an RTOS or to bare
// metal writes its own and builds with -DMTAN_PLATFORM_HOOKS=path/to/file.cc
// (tests/runtime/counting_hooks.cc is a second implementation the tests use).
// Nothing else in runtime/ depends on the platform.
#pragma once

#include <stddef.h>

namespace mtan::platform {

// A process-wide mutex held by mtan_arena_size, mtan_load, mtan_unload and
// mtan_init: the verifier's working memory and XNNPACK's allocator hook are
// process-wide. It must block (not spin), need no initialisation call and
// never allocate. It is never taken recursively.
void LoadLockAcquire();
void LoadLockRelease();

// The calling thread's buffer of kErrorMessageBytes for mtan_last_error(),
// "no error" until the thread's first failure. Per thread, so that one
// thread's failure never overwrites the message another is about to read.
constexpr size_t kErrorMessageBytes = 512;
char* ErrorMessageBuffer();

}  // namespace mtan::platform
