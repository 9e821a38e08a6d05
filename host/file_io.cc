#include "file_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mtan/mtan.h"

namespace mtan::host {
namespace {

constexpr int kFifoWaitMs = 5000;  // how long a read waits for a FIFO's writer

bool Fail(std::string* error, const std::string& path, const std::string& what) {
  *error = path + ": " + what;
  return false;
}

std::string Errno(int err) { return std::strerror(err == 0 ? EIO : err); }

// Writes all of `bytes` to `fd`; false with errno set.
bool WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// In place, for a character device or a FIFO (never replaced).
bool WriteInPlace(const std::string& path, bool fifo, const std::vector<uint8_t>& bytes,
                  std::string* error) {
  // O_NONBLOCK: opening a FIFO nobody reads fails with ENXIO instead of
  // waiting forever; then the writes block as usual.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
  if (fd < 0)
    return Fail(error, path, errno == ENXIO && fifo ? "a FIFO that no process reads"
                                                    : Errno(errno));
  if (fifo) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const bool ok = WriteAll(fd, bytes);
  const int err = errno;
  if (::close(fd) != 0 || !ok) return Fail(error, path, "write failed: " + Errno(err));
  return true;
}

}  // namespace

bool ReadFileCapped(const std::string& path, uint64_t max_bytes, bool text, std::string* bytes,
                    std::string* error) {
  // O_NONBLOCK: a FIFO without a writer opens at once instead of blocking
  // in open(); then poll() waits a bounded time for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(error, path, Errno(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Fail(error, path, Errno(err));
  }
  const std::string limit = "larger than the " + std::to_string(max_bytes) + "-byte limit";
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Fail(error, path, "is a directory, not a file");
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Fail(error, path, limit + " (" + std::to_string(st.st_size) + " bytes)");
  }
  if (S_ISFIFO(st.st_mode)) {
    pollfd p{fd, POLLIN, 0};
    int ready;
    while ((ready = ::poll(&p, 1, kFifoWaitMs)) < 0 && errno == EINTR) {
    }
    if (ready == 0) {
      ::close(fd);
      return Fail(error, path, "a FIFO that no process writes to (waited " +
                                   std::to_string(kFifoWaitMs / 1000) + " s)");
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  bytes->clear();
  if (S_ISREG(st.st_mode)) bytes->reserve(static_cast<size_t>(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Fail(error, path, "read failed: " + Errno(err));
    }
    if (n == 0) break;
    if (text) {
      if (const void* nul = std::memchr(chunk, 0, static_cast<size_t>(n))) {
        const size_t at = bytes->size() + static_cast<size_t>(static_cast<const char*>(nul) - chunk);
        ::close(fd);
        return Fail(error, path, "NUL byte at offset " + std::to_string(at) + ": not a text file");
      }
    }
    if (bytes->size() + static_cast<uint64_t>(n) > max_bytes) {
      ::close(fd);
      bytes->clear();
      return Fail(error, path, limit);
    }
    bytes->append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* bytes, std::string* error) {
  std::string data;
  // The footer rides on top of the runtime's limit; the verifier decides.
  if (!ReadFileCapped(path, MTAN_MAX_FILE_BYTES + 16ull, /*text=*/false, &data, error)) return false;
  bytes->assign(data.begin(), data.end());
  return true;
}

bool WriteFileAtomic(const std::string& path, const std::vector<uint8_t>& bytes, std::string* error) {
  std::string target = path;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    // Replace what the link points to, not the link.
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (resolved == nullptr && errno != ENOENT) return Fail(error, path, Errno(errno));
    if (resolved != nullptr) {
      target = resolved;
      std::free(resolved);
    }
  }
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))
      return WriteInPlace(target, S_ISFIFO(st.st_mode), bytes, error);
    return Fail(error, path, S_ISDIR(st.st_mode) ? "is a directory, not a file"
                                                 : "is not a regular file, a character device or "
                                                   "a FIFO: refusing to replace it");
  }
  const std::string tmp = target + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return Fail(error, tmp, Errno(errno));
  const bool ok = WriteAll(fd, bytes);
  const int err = errno;
  if (::close(fd) != 0 || !ok) {
    ::unlink(tmp.c_str());
    return Fail(error, tmp, "write failed: " + Errno(err));
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const int rename_err = errno;
    ::unlink(tmp.c_str());
    return Fail(error, path, Errno(rename_err));
  }
  return true;
}

}  // namespace mtan::host
