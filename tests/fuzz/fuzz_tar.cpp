// libFuzzer: the tar reader on arbitrary archives (a memfd stands in for the bundle file). Invariants:
// never crashes or loops; bodies never exceed the announced size; total bytes read stay within the input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "src/commands/tar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz_tar", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size > 0 && ::write(fd, data, size) != ssize_t(size)) {
    ::close(fd);
    return 0;
  }
  ::lseek(fd, 0, SEEK_SET);
  wharf::commands::TarReader reader(fd);
  uint64_t total = 0;
  for (size_t entries = 0; entries <= size / 512 + 1; ++entries) {  // each entry consumes a 512-byte header
    auto e = reader.next();
    if (!e || !*e) break;
    uint64_t got = 0;
    char buf[4096];
    for (;;) {
      auto n = reader.read(buf, sizeof buf);
      if (!n || *n == 0) break;
      got += *n;
      if (got > (*e)->size) __builtin_trap();
    }
    total += got;
    if (total > size) __builtin_trap();
  }
  ::close(fd);
  return 0;
}
