#include "src/http/buffer_pool.hpp"

namespace wharf::http {

BufferPool::BufferPool(size_t block_size, size_t max_idle) : block_size_(block_size), max_idle_(max_idle) {
  idle_.reserve(max_idle_);
}

BufferPool::~BufferPool() = default;

char* BufferPool::acquire() {
  char* block;
  if (!idle_.empty()) {
    block = idle_.back().release();
    idle_.pop_back();
  } else {
    block = std::make_unique_for_overwrite<char[]>(block_size_).release();
    ++allocated_;
  }
  ++in_use_;
  return block;
}

void BufferPool::release(char* block) {
  if (!block) return;
  --in_use_;
  std::unique_ptr<char[]> owned(block);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(owned));
}

}  // namespace wharf::http
