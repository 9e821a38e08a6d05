#include "subprocess.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mtan::bench {
namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (const std::string& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  return a;
}

// Spawns argv with stdin from `in_fd` (-1: /dev/null) and stdout (and
// stderr when `capture_stderr`) to `out_fd`.
bool Spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, bool capture_stderr,
           int close_fd, pid_t* pid, std::string* error) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  if (capture_stderr) posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
  if (close_fd >= 0) posix_spawn_file_actions_addclose(&fa, close_fd);
  std::vector<char*> a = Argv(argv);
  const int rc = posix_spawnp(pid, a[0], &fa, nullptr, a.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    *error = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return false;
  }
  return true;
}

std::string HowItEnded(const std::string& name, int status) {
  if (WIFEXITED(status)) return name + " exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return name + " was killed by signal " + std::to_string(WTERMSIG(status));
  return name + " ended abnormally";
}

}  // namespace

bool RunCommand(const std::vector<std::string>& argv, std::string* output, std::string* error) {
  output->clear();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  pid_t pid = -1;
  const bool spawned = Spawn(argv, -1, fds[1], true, fds[0], &pid, error);
  close(fds[1]);
  if (!spawned) {
    close(fds[0]);
    return false;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) output->append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  // posix_spawnp reports a missing program only through the child's exit
  // status 127 (glibc), with nothing printed.
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && output->empty()) {
    *error = "cannot run " + argv[0] + ": not found";
    return false;
  }
  *error = HowItEnded(argv[0], status);
  return false;
}

LineChild::~LineChild() {
  if (fd_ >= 0) {
    shutdown(fd_, SHUT_WR);
    close(fd_);
  }
  if (pid_ <= 0) return;
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(5)) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    usleep(2000);
  }
}

bool LineChild::Start(const std::vector<std::string>& argv, std::string* error) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  pid_t pid = -1;
  const bool spawned = Spawn(argv, sv[1], sv[1], false, sv[0], &pid, error);
  close(sv[1]);
  if (!spawned) {
    close(sv[0]);
    return false;
  }
  pid_ = pid;
  fd_ = sv[0];
  name_ = argv[0];
  return true;
}

bool LineChild::Request(const std::string& line, std::string* reply, double timeout_s,
                        std::string* error) {
  if (fd_ < 0) {
    *error = name_ + " is not running";
    return false;
  }
  const std::string msg = line + "\n";
  for (size_t sent = 0; sent < msg.size();) {
    const ssize_t n = send(fd_, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = name_ + " stopped reading its requests (" + std::strerror(errno) + ")";
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return ReadLine(reply, timeout_s, error);
}

bool LineChild::ReadLine(std::string* line, double timeout_s, std::string* error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      *error = name_ + " did not answer within " + std::to_string(static_cast<int>(timeout_s)) + " s";
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    int status = 0;
    std::string how = name_ + " closed its output";
    if (waitpid(pid_, &status, 0) == pid_) {
      how = HowItEnded(name_, status);
      pid_ = -1;
    }
    *error = how + (buffer_.empty() ? "" : ": " + buffer_);
    return false;
  }
}

}  // namespace mtan::bench
