// Files the tools read and write (host/file_io.h), issue 12 findings 7
// and 10: atomic writes no longer replace device nodes, FIFOs or links; reads
// never block on a FIFO and never fill memory from an endless or huge file.
#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "dataset.h"

using namespace mtan::host;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/mtan-file-io-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

mode_t TypeOf(const std::string& path, bool follow = true) {
  struct stat st;
  REQUIRE((follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) == 0);
  return st.st_mode & S_IFMT;
}

std::string Slurp(const std::string& path) {
  std::string text, error;
  REQUIRE_MESSAGE(ReadFileCapped(path, 1 << 20, false, &text, &error), error);
  return text;
}

const std::vector<uint8_t> kBytes = {'m', 't', 'a', 'n', '\n'};

}  // namespace

TEST_SUITE("file_io") {
  TEST_CASE("a regular file is replaced atomically; a symlink keeps pointing at it") {
    TempDir d;
    const std::string file = d.path + "/model.mtan", link = d.path + "/current.mtan";
    std::string error;
    REQUIRE_MESSAGE(WriteFileAtomic(file, {'o', 'l', 'd'}, &error), error);
    REQUIRE(symlink(file.c_str(), link.c_str()) == 0);
    REQUIRE_MESSAGE(WriteFileAtomic(link, kBytes, &error), error);
    CHECK(TypeOf(link, false) == S_IFLNK);  // the link was not replaced
    CHECK(Slurp(file) == "mtan\n");
    CHECK(access((file + ".tmp").c_str(), F_OK) != 0);  // nothing left behind
  }

  TEST_CASE("a character device is written in place, never replaced") {
    TempDir d;
    // Through a link, so that a regression replaces the link, not /dev/null.
    const std::string link = d.path + "/null-link";
    REQUIRE(symlink("/dev/null", link.c_str()) == 0);
    std::string error;
    CHECK_MESSAGE(WriteFileAtomic(link, kBytes, &error), error);
    CHECK(TypeOf(link, false) == S_IFLNK);
    CHECK(TypeOf("/dev/null") == S_IFCHR);
    // A copy of /dev/null (issue 12: mtan-eval --json turned one into a
    // regular file); only root may make one.
    const std::string node = d.path + "/null";
    if (mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
      CHECK_MESSAGE(WriteFileAtomic(node, kBytes, &error), error);
      CHECK(TypeOf(node) == S_IFCHR);
    } else {
      MESSAGE("not root: the device-node copy is skipped");
    }
  }

  TEST_CASE("a FIFO is written in place when read, refused (not waited on) when not") {
    TempDir d;
    const std::string fifo = d.path + "/fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    std::string error;
    CHECK_FALSE(WriteFileAtomic(fifo, kBytes, &error));
    CHECK(error.find("no process reads") != std::string::npos);
    CHECK(TypeOf(fifo) == S_IFIFO);
    auto reader = std::async(std::launch::async, [&] { return Slurp(fifo); });
    bool written = false;
    for (int i = 0; i < 200 && !written; ++i) {  // until the reader has opened it
      written = WriteFileAtomic(fifo, kBytes, &error);
      if (!written) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(written);
    CHECK(reader.get() == "mtan\n");
    CHECK(TypeOf(fifo) == S_IFIFO);
  }

  TEST_CASE("a directory is refused by name") {
    TempDir d;
    std::string error;
    CHECK_FALSE(WriteFileAtomic(d.path, kBytes, &error));
    CHECK(error.find("is a directory") != std::string::npos);
    std::string text;
    CHECK_FALSE(ReadFileCapped(d.path, 100, false, &text, &error));
    CHECK(error.find("is a directory") != std::string::npos);
  }

  TEST_CASE("reading a FIFO: a writer's bytes, or a bounded wait for one that never comes") {
    TempDir d;
    const std::string fifo = d.path + "/fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    auto read = std::async(std::launch::async, [&] {
      std::string text, error;
      return ReadTextFile(fifo, &text, &error) ? text : "error: " + error;
    });
    const bool returned = read.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    if (!returned) {  // release a reader blocked in open() before failing
      const int fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) close(fd);
    }
    REQUIRE(returned);
    const std::string got = read.get();
    CHECK(got.find("a FIFO that no process writes to") != std::string::npos);
    // With a writer (which arrives after the reader has opened the FIFO).
    auto late = std::async(std::launch::async, [&] {
      std::string text, error;
      return ReadTextFile(fifo, &text, &error) ? text : "error: " + error;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int fd = open(fifo.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "y\n1\n", 4) == 4);
    close(fd);
    CHECK(late.get() == "y\n1\n");
  }

  TEST_CASE("an endless or oversized input fails at once") {
    std::string text, error;
    // /dev/zero as a CSV reached 8.4 GB of memory in 20 s.
    CHECK_FALSE(ReadTextFile("/dev/zero", &text, &error));
    CHECK(error.find("NUL byte at offset 0") != std::string::npos);
    TempDir d;
    const std::string big = d.path + "/big.csv";
    {
      // Sparse: 4 GiB + 1 byte of nothing, refused from its size.
      const int fd = open(big.c_str(), O_WRONLY | O_CREAT, 0600);
      REQUIRE(fd >= 0);
      REQUIRE(ftruncate(fd, static_cast<off_t>(kMaxCsvBytes + 1)) == 0);
      close(fd);
    }
    CHECK_FALSE(ReadTextFile(big, &text, &error));
    CHECK(error.find("larger than the 4294967296-byte limit") != std::string::npos);
    CHECK(text.empty());
    // A stream past the limit (/dev/zero read as bytes) stops at it.
    CHECK_FALSE(ReadFileCapped("/dev/zero", 1 << 20, false, &text, &error));
    CHECK(error.find("larger than the 1048576-byte limit") != std::string::npos);
    // A spec has its own, smaller cap.
    Spec spec;
    {
      const int fd = open((d.path + "/spec.json").c_str(), O_WRONLY | O_CREAT, 0600);
      REQUIRE(fd >= 0);
      REQUIRE(ftruncate(fd, static_cast<off_t>(kMaxSpecBytes + 1)) == 0);
      close(fd);
    }
    CHECK_FALSE(LoadSpec(d.path + "/spec.json", &spec, &error));
    CHECK(error.find("larger than the 16777216-byte limit") != std::string::npos);
  }
}
