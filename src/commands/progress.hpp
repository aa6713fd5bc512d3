#pragma once
// Progress of a long CLI operation: on a terminal (stderr is a TTY) one rewritten line with bytes,
// speed and ETA; otherwise one plain log line per item.
#include <chrono>
#include <cstdint>
#include <string>

namespace wharf::commands {

class Progress {
 public:
  // `verb` labels the output ("export", "import", "prefetch"); `total` bytes may be 0 when unknown.
  explicit Progress(std::string verb, uint64_t total = 0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // Raises the expected total (e.g. once a manifest says how large its layers are).
  void add_total(uint64_t bytes) { total_ += bytes; }
  // A new item starts (logged as a line when not on a TTY).
  void item(const std::string& what, uint64_t size);
  // `n` more bytes are done.
  void advance(uint64_t n);
  // Ends the line (TTY) and logs a summary.
  void finish();

 private:
  void draw(bool force);
  std::string verb_;
  uint64_t total_ = 0, done_ = 0;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1.5 MiB"
std::string human_bytes(uint64_t n);

}  // namespace wharf::commands
