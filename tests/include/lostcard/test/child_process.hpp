#pragma once
// A real child process for end-to-end tests: started with posix_spawn, its output appended to a
// log file, stopped with SIGTERM (or SIGKILL) when the test is done.
//
//   ChildProcess cloud({bin + "/lostcard-cloud", "--config", path}, dir + "/cloud.log");
//   ...
//   cloud.terminate();   // also done by the destructor
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace lostcard::test {

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, const std::string& log_path,
               std::vector<std::string> extra_env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit status (as waitpid).
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  void kill9();
  // Waits for the process to end on its own; nullopt when it is still running after `limit`.
  std::optional<int> waitFor(std::chrono::milliseconds limit);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Polls `condition` every 50 ms until it holds or `limit` passes; returns whether it held.
// Tests use it to wait for events, never to judge speed.
template <class F>
bool eventually(F&& condition, std::chrono::milliseconds limit);

// $LOSTCARD_BIN_DIR, where the build puts every program.
std::string binDir();
std::string sourceDir();
// A fresh empty directory under the build tree for one test's files.
std::string makeTestDir(const std::string& name);

}  // namespace lostcard::test

#include <thread>

template <class F>
bool lostcard::test::eventually(F&& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

namespace lostcard::test {

// Runs `argv` to completion with `stdin_text` on its standard input; returns its standard
// output. Throws std::runtime_error (with the program's stderr) when it exits non-zero.
std::string runProgram(const std::vector<std::string>& argv, const std::string& stdin_text = {});

// A TCP port on 127.0.0.1 that was free a moment ago.
int freeLocalPort();

}  // namespace lostcard::test
