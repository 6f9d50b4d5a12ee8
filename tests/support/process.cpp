#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

extern char** environ;

namespace lastframe::testing {
namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// environ with |env| ("NAME=value") added, replacing same-named variables.
std::vector<std::string> Environment(const std::vector<std::string>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var = *e;
    std::string name = var.substr(0, var.find('=') + 1);
    bool replaced = std::any_of(env.begin(), env.end(),
                                [&](const std::string& v) { return v.rfind(name, 0) == 0; });
    if (!replaced) out.push_back(std::move(var));
  }
  out.insert(out.end(), env.begin(), env.end());
  return out;
}

pid_t Spawn(const std::vector<std::string>& argv, int out_fd, const std::vector<std::string>& env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  }
  pid_t pid = -1;
  auto args = Argv(argv);
  std::vector<std::string> vars = Environment(env);
  auto envp = Argv(vars);
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  return pid;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::vector<std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t pid = Spawn(argv, fds[1], env);
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = std::move(out);
  return ExitCode(status);
}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = Spawn(argv, fds[1], env);
  close(fds[1]);
  drain_ = std::thread([this, fd = fds[0]] { Drain(fd); });
}

Process::~Process() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (drain_.joinable()) drain_.join();
}

void Process::Drain(int fd) {
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    std::lock_guard lock(mu_);
    output_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

std::string Process::WaitForLine(const std::string& needle, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::string line;
  auto found = [&] {
    size_t at = output_.find(needle);
    if (at == std::string::npos) return false;
    size_t begin = output_.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    size_t end = output_.find('\n', at);
    if (end == std::string::npos) return false;  // wait for the whole line
    line = output_.substr(begin, end - begin);
    return true;
  };
  cv_.wait_for(lock, timeout, [&] { return found() || eof_; });
  return line;
}

void Process::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int Process::Wait() {
  if (!reaped_) {
    waitpid(pid_, &status_, 0);
    reaped_ = true;
  }
  // What it printed last may still be in the pipe: Output() after Wait() has it all (bounded,
  // in case a child of the process still holds the pipe open).
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(5), [this] { return eof_; });
  return ExitCode(status_);
}

int Process::WaitFor(std::chrono::milliseconds timeout) {
  if (reaped_) return ExitCode(status_);
  // A pidfd becomes readable when the child exits: no polling loop.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) throw std::runtime_error("pidfd_open");
  pollfd p{.fd = pidfd, .events = POLLIN};
  int ready = poll(&p, 1, static_cast<int>(timeout.count()));
  close(pidfd);
  if (ready <= 0) return -1;
  return Wait();
}

bool Process::running() {
  if (reaped_) return false;
  pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

std::string Process::Output() {
  std::lock_guard lock(mu_);
  return output_;
}

}  // namespace lastframe::testing
