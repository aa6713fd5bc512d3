#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "src/http/buffer_pool.hpp"

using namespace wharf::http;

TEST_CASE("BufferPool::acquire") {
  BufferPool pool(4096, 2);
  SUBCASE("a fresh block has the pool's size and counts as in use") {
    char* b = pool.acquire();
    REQUIRE(b);
    std::memset(b, 0xab, pool.block_size());  // the whole block is writable (ASan checks the bound)
    CHECK(pool.in_use() == 1);
    CHECK(pool.allocated() == 1);
    pool.release(b);
    CHECK(pool.in_use() == 0);
  }
  SUBCASE("a released block is handed out again instead of a new one") {
    char* a = pool.acquire();
    pool.release(a);
    char* b = pool.acquire();
    CHECK(b == a);
    CHECK(pool.allocated() == 1);
    pool.release(b);
  }
}

TEST_CASE("BufferPool::release") {
  BufferPool pool(1024, 2);
  SUBCASE("keeps at most max_idle blocks and frees the rest") {
    std::vector<char*> blocks;
    for (int i = 0; i < 5; ++i) blocks.push_back(pool.acquire());
    CHECK(pool.in_use() == 5);
    for (char* b : blocks) pool.release(b);
    CHECK(pool.in_use() == 0);
    CHECK(pool.idle() == 2);
    // Reuse: five more blocks allocate only the three the pool did not keep.
    for (auto& b : blocks) b = pool.acquire();
    CHECK(pool.allocated() == 8);
    for (char* b : blocks) pool.release(b);
  }
  SUBCASE("null is ignored") {
    pool.release(nullptr);
    CHECK(pool.in_use() == 0);
    CHECK(pool.idle() == 0);
  }
}
