// The runtime's platform hooks (runtime/src/platform.h) for Linux, Android,
// macOS and any POSIX system: a pthread mutex (sleeps while another thread
// loads) and a thread_local message buffer. Statically initialised: no
// constructor runs and nothing is allocated.
#include <pthread.h>

#include "platform.h"

namespace mtan::platform {
namespace {
pthread_mutex_t g_load_lock = PTHREAD_MUTEX_INITIALIZER;
thread_local char t_message[kErrorMessageBytes] = "no error";
}  // namespace

void LoadLockAcquire() { pthread_mutex_lock(&g_load_lock); }
void LoadLockRelease() { pthread_mutex_unlock(&g_load_lock); }
char* ErrorMessageBuffer() { return t_message; }

}  // namespace mtan::platform
