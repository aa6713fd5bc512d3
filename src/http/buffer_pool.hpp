#pragma once
// Fixed-size memory blocks for file bodies that cannot go out with sendfile (TLS without kernel TLS):
// read into a block, queued by reference on a connection's output, given back once the bytes are
// encrypted and written. Idle blocks are kept for reuse up to a bound, so a busy server reuses a few
// warm blocks instead of mapping whole files (mapped pages count towards the resident set).
#include <cstddef>
#include <memory>
#include <vector>

namespace wharf::http {

class BufferPool {
 public:
  // A pool of `block_size`-byte blocks that keeps at most `max_idle` unused blocks for reuse.
  BufferPool(size_t block_size, size_t max_idle);
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  // Frees the idle blocks; every acquired block must have been released before.
  ~BufferPool();

  // A block of block_size() bytes, an idle one if there is one; throws std::bad_alloc if memory is out.
  char* acquire();
  // Gives back a block from acquire(): kept for reuse while fewer than max_idle are idle, else freed.
  void release(char* block);

  // The size of every block.
  size_t block_size() const { return block_size_; }
  // Blocks acquired and not released yet.
  size_t in_use() const { return in_use_; }
  // Blocks kept for reuse.
  size_t idle() const { return idle_.size(); }
  // Blocks ever allocated from the heap (reuse keeps this low).
  size_t allocated() const { return allocated_; }

 private:
  size_t block_size_;
  size_t max_idle_;
  std::vector<std::unique_ptr<char[]>> idle_;
  size_t in_use_ = 0;
  size_t allocated_ = 0;
};

}  // namespace wharf::http
