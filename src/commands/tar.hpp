#pragma once
// A small streaming tar (ustar + pax) writer and reader over a file descriptor: regular files only on
// write; on read, pax extended headers ("path", "size") and GNU long names ('L') are understood.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace wharf::commands {

// Writes entries to `fd` (not owned). Each entry is begin() + write()... + end(); finish() closes the archive.
class TarWriter {
 public:
  explicit TarWriter(int fd) : fd_(fd) {}
  // Starts a regular-file entry of exactly `size` bytes; names over 100 bytes get a pax header.
  // Fails with errno's message if the write fails.
  std::expected<void, std::string> begin(std::string_view name, uint64_t size);
  // Appends body bytes of the current entry; fails if more than the announced size is written.
  std::expected<void, std::string> write(const void* data, size_t n);
  // Pads the current entry to a block; fails if fewer bytes than announced were written.
  std::expected<void, std::string> end();
  // A whole entry from memory.
  std::expected<void, std::string> add(std::string_view name, std::string_view data);
  // Writes the end-of-archive marker (two zero blocks).
  std::expected<void, std::string> finish();

 private:
  std::expected<void, std::string> put(const void* data, size_t n);
  std::expected<void, std::string> header(std::string_view name, uint64_t size, char type);
  int fd_;
  uint64_t size_ = 0, written_ = 0;
  bool open_ = false;
};

struct TarEntry {
  std::string name;   // full path, from pax/GNU long names when present
  uint64_t size = 0;  // body size
  char type = '0';    // '0' regular ('\0' is reported as '0'), '5' directory, ...
};

// Reads entries from `fd` (not owned), treating the archive as hostile: a bad checksum, a size field that is
// not plain octal or non-negative base-256 below 2^63, a malformed pax record (length with a sign, junk,
// overflow, or not ending in a newline), metadata over 1 MiB, and truncation are all errors.
class TarReader {
 public:
  explicit TarReader(int fd) : fd_(fd) {}
  // The next entry (skipping what is left of the current one); nullopt at the end-of-archive marker.
  // Fails on a bad header checksum, a truncated archive, or an archive without an end marker.
  std::expected<std::optional<TarEntry>, std::string> next();
  // Up to `n` bytes of the current entry's body; 0 once it is all read. Fails if the archive is cut short.
  std::expected<size_t, std::string> read(void* buf, size_t n);

 private:
  std::expected<bool, std::string> read_exact(void* buf, size_t n);  // false: clean EOF before any byte
  std::expected<void, std::string> skip_rest();
  int fd_;
  uint64_t remaining_ = 0;  // body bytes of the current entry not yet read
  uint64_t padding_ = 0;    // padding after the current entry's body
  std::string current_;     // current entry name (for messages)
};

}  // namespace wharf::commands
