// Child processes of mtan-bench's out-of-process peers: a command run to
// completion with its output captured (the ONNX exporter), and a long-lived
// child spoken to in lines over a socket pair (the ONNX Runtime peer). POSIX
// only, like the rest of mtan-bench.
#pragma once

#include <string>
#include <vector>

namespace mtan::bench {

// Runs argv[0] (looked up on PATH when it has no '/') with stdout and stderr
// captured into *output. True when it exited with status 0; otherwise false
// with *error saying how it ended (and *output what it printed).
bool RunCommand(const std::vector<std::string>& argv, std::string* output, std::string* error);

// A child whose stdin and stdout are one end of a socket pair: requests are
// written as lines, replies read as lines. Its stderr is mtan-bench's.
// Writing to a child that has died is an error, never a SIGPIPE.
class LineChild {
 public:
  LineChild() = default;
  LineChild(const LineChild&) = delete;
  LineChild& operator=(const LineChild&) = delete;
  // Closes the child's input (it should exit on end of input), waits up to
  // a few seconds, then kills it.
  ~LineChild();

  bool Start(const std::vector<std::string>& argv, std::string* error);
  // Writes `line` and a newline, then reads one reply line (without the
  // newline), waiting at most `timeout_s` seconds for it.
  bool Request(const std::string& line, std::string* reply, double timeout_s, std::string* error);
  bool running() const { return pid_ > 0; }

 private:
  bool ReadLine(std::string* line, double timeout_s, std::string* error);
  int pid_ = -1;
  int fd_ = -1;
  std::string name_;
  std::string buffer_;  // bytes read past the last line
};

}  // namespace mtan::bench
