// Terminal progress line / plain log lines; see progress.hpp.
#include "src/commands/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace wharf::commands {

std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

Progress::Progress(std::string verb, uint64_t total)
    : verb_(std::move(verb)), total_(total), tty_(::isatty(2) == 1), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (tty_ && !finished_ && done_ > 0) std::fputs("\n", stderr);
}

void Progress::item(const std::string& what, uint64_t size) {
  if (!tty_) spdlog::info("{}: {} ({})", verb_, what, human_bytes(size));
}

void Progress::advance(uint64_t n) {
  done_ += n;
  draw(false);
}

void Progress::draw(bool force) {
  if (!tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double speed = secs > 0 ? double(done_) / secs : 0;
  std::string eta = "--";
  if (speed > 0 && total_ > done_) eta = std::to_string(uint64_t(double(total_ - done_) / speed)) + "s";
  else if (total_ && total_ <= done_) eta = "0s";
  std::string total = total_ ? " / " + human_bytes(total_) : "";
  std::fprintf(stderr, "\r\033[K%s: %s%s  %s/s  ETA %s", verb_.c_str(), human_bytes(done_).c_str(), total.c_str(),
               human_bytes(uint64_t(speed)).c_str(), eta.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  if (tty_) {
    draw(true);
    std::fputs("\n", stderr);
  }
  finished_ = true;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  spdlog::info("{}: {} in {:.1f} s", verb_, human_bytes(done_), secs);
}

}  // namespace wharf::commands
