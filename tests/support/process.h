#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lastframe::testing {

// Runs |argv| to completion (no shell) and returns its exit status; its
// stdout and stderr go to |output| when given.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr,
               const std::vector<std::string>& env = {});

// A child process whose stderr (and stdout) are captured line by line, so a
// test can wait for a line it prints instead of sleeping.
class Process {
 public:
  // |env| ("NAME=value") is added to this process's environment for the child,
  // replacing variables of the same name.
  explicit Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until a line containing |needle| was printed; returns that line, or
  // "" if the process exited or |timeout| passed first.
  std::string WaitForLine(const std::string& needle, std::chrono::milliseconds timeout);
  // Sends |sig|; then Wait() reaps.
  void Signal(int sig);
  // Waits for exit and returns the exit code (128 + signal if killed).
  int Wait();
  // As Wait(), but gives up after |timeout| and returns -1 (the child runs on).
  int WaitFor(std::chrono::milliseconds timeout);
  bool running();
  std::string Output();

 private:
  void Drain(int fd);
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::thread drain_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
};

}  // namespace lastframe::testing
