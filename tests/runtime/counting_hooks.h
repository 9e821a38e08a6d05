// What tests/runtime/counting_hooks.cc counted.
#pragma once

struct mtan_test_hook_counts {
  int acquired = 0;
  int released = 0;
  int max_depth = 0;  // the lock is never taken recursively: 1
  int message_buffer_calls = 0;
};

mtan_test_hook_counts mtan_test_hooks_counts();
const char* mtan_test_hooks_message();  // the hooks' own message buffer
