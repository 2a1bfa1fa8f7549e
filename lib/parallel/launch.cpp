#include "parallel/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "common/error.h"

namespace ilt {

namespace {
volatile sig_atomic_t g_forward = 0;
void on_signal(int sig) { g_forward = sig; }

// A TCP port free on the loopback interface now (the kernel's choice).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("launcher: socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    close(fd);
    fail("launcher: cannot find a free port: {}", std::strerror(e));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "ended";
}
int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}
}  // namespace

std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind(name + "=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

int launch_local(int nproc, const std::vector<std::string>& args, double grace_seconds) {
  if (nproc < 1) fail("--nproc-per-node {}: at least 1", nproc);
  if (std::getenv("RANK")) fail("--nproc-per-node inside a launched job (RANK is set): use one launcher");
  const int port = free_port();
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::vector<pid_t> pids(size_t(nproc), -1);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = fork();
    if (pid < 0) fail("launcher: fork: {}", std::strerror(errno));
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      execv("/proc/self/exe", const_cast<char* const*>(argv.data()));
      fmt::print(stderr, "launcher: cannot run {}: {}\n", args[0], std::strerror(errno));
      _exit(127);
    }
    pids[size_t(r)] = pid;
  }
  int running = nproc, result = 0, failed_rank = -1;
  std::chrono::steady_clock::time_point kill_at{};
  bool terminating = false;
  auto signal_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) kill(p, sig);
  };
  while (running > 0) {
    if (g_forward) {  // Ctrl-C or the scheduler: every rank saves and stops at the same step
      signal_all(g_forward);
      g_forward = 0;
    }
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) break;
    if (pid <= 0) {
      if (terminating && std::chrono::steady_clock::now() > kill_at) signal_all(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int rank = -1;
    for (int r = 0; r < nproc; ++r)
      if (pids[size_t(r)] == pid) rank = r, pids[size_t(r)] = -1;
    --running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failed_rank < 0) {
      failed_rank = rank;
      result = exit_code(status);
      if (running > 0) {
        fmt::print(stderr, "ilt-train: rank {} {}; stopping the other ranks\n", rank, describe(status));
        signal_all(SIGTERM);
        terminating = true;
        kill_at = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(int64_t(grace_seconds * 1000));
      } else if (nproc > 1) {
        fmt::print(stderr, "ilt-train: rank {} {}\n", rank, describe(status));
      }
    }
  }
  return result;
}

}  // namespace ilt
