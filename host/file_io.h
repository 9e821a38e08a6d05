// Reading and writing the tools' files: one place that knows about size
// caps, FIFOs, device nodes and atomic replacement. Host only. Every function
// returns false with a message naming the path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtan::host {

// Reads all of `path` into *bytes, refusing more than `max_bytes` ("larger
// than the N-byte limit"; a regular file is refused from its size, a stream
// after max_bytes + 1 bytes). A directory is named as one. A FIFO waits at
// most 5 s for a writer, then fails saying so (it used to block forever);
// a pipe whose writer runs (bash's <(...)) reads as usual. With `text`, a
// NUL byte is refused where it is met
// (/dev/zero or a binary file given as a CSV fails at once, instead of
// filling memory).
bool ReadFileCapped(const std::string& path, uint64_t max_bytes, bool text, std::string* bytes,
                    std::string* error);

// A model file: at most the runtime's MTAN_MAX_FILE_BYTES (plus its footer).
bool ReadFile(const std::string& path, std::vector<uint8_t>* bytes, std::string* error);

// Replaces `path` with `bytes` without ever leaving a half-written file: a
// regular file (or none) is written to path.tmp, then renamed over it. A
// symbolic link is followed: its target is replaced, the link kept. A
// character device (/dev/null) or a FIFO is written in place, never replaced
// (a FIFO no process reads is an error, not a hang); a directory, block
// device or socket is refused. (Writing path.tmp and renaming used to turn
// /dev/null into a regular file when run as root.)
bool WriteFileAtomic(const std::string& path, const std::vector<uint8_t>& bytes,
                     std::string* error);

}  // namespace mtan::host
