#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cache/fs/fs_store.hpp"
#include "src/oci/digest.hpp"

using namespace wharf::cache;
using wharf::oci::Digest;
using wharf::oci::DigestAlgo;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the scope.
struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/wharf-blobs-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

FsBlobStore open_store(const fs::path& root) {
  auto store = FsBlobStore::open(root);
  REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error()));
  return std::move(*store);
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  return out;
}

// prepare + place of one staged file, without an index (as the publication path does under its lock).
std::expected<void, std::string> publish(const FsBlobStore& store, const fs::path& tmp, const Digest& d) {
  const Placement p{tmp, d, std::nullopt, Placement::IfDamaged::Keep};
  auto e = store.prepare({p});
  if (e[0].empty()) e = store.place({p});
  if (!e[0].empty()) return std::unexpected(e[0]);
  return {};
}

const Digest kHello{DigestAlgo::Sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"};
const Digest kOther{DigestAlgo::Sha256, "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7"};

}  // namespace

TEST_CASE("FsBlobStore::open") {
  Scratch s;
  SUBCASE("creates the layout, parents included") {
    auto store = open_store(s.dir / "a" / "root");
    CHECK(store.root() == s.dir / "a" / "root");
    CHECK(fs::is_directory(s.dir / "a" / "root" / "blobs" / "sha256"));
    CHECK(fs::is_directory(s.dir / "a" / "root" / "blobs" / "sha512"));
    CHECK(fs::is_directory(s.dir / "a" / "root" / "uploads"));
    CHECK(fs::is_directory(store.tmp_dir()));
  }
  SUBCASE("opening twice is fine") {
    open_store(s.dir);
    open_store(s.dir);
  }
  SUBCASE("fails naming the path when the root is a file") {
    write_file(s.dir / "file", "x");
    auto store = FsBlobStore::open(s.dir / "file");
    REQUIRE_FALSE(store);
    CHECK(store.error().find((s.dir / "file").string()) != std::string::npos);
  }
}

TEST_CASE("FsBlobStore::blob_path") {
  Scratch s;
  auto store = open_store(s.dir);
  SUBCASE("sha256 fans out on the first two hex digits") {
    CHECK(store.blob_path(kHello) == s.dir / "blobs" / "sha256" / "2c" / kHello.hex);
  }
  SUBCASE("sha512") {
    Digest d{DigestAlgo::Sha512, std::string(128, 'a')};
    CHECK(store.blob_path(d) == s.dir / "blobs" / "sha512" / "aa" / d.hex);
  }
  SUBCASE("upload path") { CHECK(store.upload_key("abc") == s.dir / "uploads" / "abc"); }
}

TEST_CASE("FsBlobStore::prepare and place") {
  Scratch s;
  auto store = open_store(s.dir);
  const fs::path tmp = store.tmp_dir() / "upload-1";
  write_file(tmp, "hello");
  SUBCASE("moves the temp file into place") {
    REQUIRE(publish(store, tmp, kHello));
    CHECK_FALSE(fs::exists(tmp));
    CHECK(read_file(store.blob_path(kHello)) == "hello");
  }
  SUBCASE("an existing blob wins and the temp file is removed") {
    REQUIRE(publish(store, tmp, kHello));
    const fs::path tmp2 = store.tmp_dir() / "upload-2";
    write_file(tmp2, "hello");
    REQUIRE(publish(store, tmp2, kHello));
    CHECK_FALSE(fs::exists(tmp2));
    CHECK(read_file(store.blob_path(kHello)) == "hello");
  }
  SUBCASE("a missing temp file is an error naming it") {
    auto r = publish(store, store.tmp_dir() / "missing", kOther);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("missing") != std::string::npos);
    CHECK_FALSE(store.stat(kOther));
  }
}

TEST_CASE("FsBlobStore::place of several items") {
  Scratch s;
  auto store = open_store(s.dir);
  const Digest third{DigestAlgo::Sha256, "ab" + std::string(62, '0')};
  write_file(store.tmp_dir() / "a", "hello");
  write_file(store.tmp_dir() / "b", "other");
  write_file(store.tmp_dir() / "dup", "hello");
  std::vector<Placement> items{{store.tmp_dir() / "a", kHello, std::nullopt, Placement::IfDamaged::Keep},
                               {store.tmp_dir() / "missing", third, std::nullopt, Placement::IfDamaged::Keep},
                               {store.tmp_dir() / "b", kOther, std::nullopt, Placement::IfDamaged::Keep},
                               {store.tmp_dir() / "dup", kHello, std::nullopt, Placement::IfDamaged::Keep}};
  auto errors = store.prepare(items);
  CHECK(errors[1].find("missing") != std::string::npos);
  items.erase(items.begin() + 1);
  auto placed = store.place(items);
  errors = {placed[0], errors[1], placed[1], placed[2]};
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].empty());
  CHECK(errors[1].find("missing") != std::string::npos);  // only the item at fault fails
  CHECK(errors[2].empty());
  CHECK(errors[3].empty());  // already stored (by the first item): the temp file goes
  CHECK(read_file(store.blob_path(kHello)) == "hello");
  CHECK(read_file(store.blob_path(kOther)) == "other");
  CHECK_FALSE(store.stat(third));
  for (const char* name : {"a", "b", "dup"}) CHECK_FALSE(fs::exists(store.tmp_dir() / name));
}

TEST_CASE("FsBlobStore::open creates the sha256 fan-out directories") {
  Scratch s;
  auto store = open_store(s.dir);
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(s.dir / "blobs" / "sha256")) dirs += e.is_directory() ? 1 : 0;
  CHECK(dirs == 256);
  CHECK(fs::is_directory(store.blob_path(kHello).parent_path()));
  fs::remove(store.blob_path(kHello).parent_path());  // removed by hand: publishing recreates it
  write_file(store.tmp_dir() / "a", "hello");
  REQUIRE(publish(store, store.tmp_dir() / "a", kHello));
  CHECK(read_file(store.blob_path(kHello)) == "hello");
  REQUIRE(FsBlobStore::open(s.dir));  // reopening an existing store is fine
}

TEST_CASE("FsBlobStore::write") {
  Scratch s;
  auto store = open_store(s.dir);
  SUBCASE("stores the bytes and leaves nothing in tmp") {
    REQUIRE(store.write(kHello, "hello"));
    CHECK(read_file(store.blob_path(kHello)) == "hello");
    CHECK(fs::is_empty(store.tmp_dir()));
    CHECK((fs::status(store.blob_path(kHello)).permissions() & fs::perms::owner_read) != fs::perms::none);
  }
  SUBCASE("writing again succeeds and keeps one copy") {
    REQUIRE(store.write(kHello, "hello"));
    REQUIRE(store.write(kHello, "hello"));
    CHECK(read_file(store.blob_path(kHello)) == "hello");
    CHECK(fs::is_empty(store.tmp_dir()));
  }
  SUBCASE("empty content") {
    Digest empty{DigestAlgo::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"};
    REQUIRE(store.write(empty, ""));
    CHECK(store.stat(empty) == 0u);
  }
  SUBCASE("large content") {
    std::string big(3 << 20, 'x');
    REQUIRE(store.write(kOther, big));
    CHECK(store.stat(kOther) == big.size());
  }
  SUBCASE("fails with a message when tmp is missing") {
    fs::remove(store.tmp_dir());
    auto r = store.write(kHello, "hello");
    REQUIRE_FALSE(r);
    CHECK(r.error().find(store.tmp_dir().string()) != std::string::npos);
  }
}

TEST_CASE("FsBlobStore::stat") {
  Scratch s;
  auto store = open_store(s.dir);
  SUBCASE("absent") { CHECK_FALSE(store.stat(kHello)); }
  SUBCASE("present") {
    REQUIRE(store.write(kHello, "hello"));
    CHECK(store.stat(kHello) == 5u);
  }
}

TEST_CASE("FsBlobStore::open_read") {
  Scratch s;
  auto store = open_store(s.dir);
  SUBCASE("absent") { CHECK(store.open_local(kHello) == -1); }
  SUBCASE("present, read-only and close-on-exec") {
    REQUIRE(store.write(kHello, "hello"));
    int fd = store.open_local(kHello);
    REQUIRE(fd >= 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK(read_fd(fd) == "hello");
    ::close(fd);
  }
}

TEST_CASE("FsBlobStore::remove") {
  Scratch s;
  auto store = open_store(s.dir);
  REQUIRE(store.write(kHello, "hello"));
  SUBCASE("removes once") {
    CHECK(store.remove(kHello));
    CHECK_FALSE(store.stat(kHello));
    CHECK_FALSE(store.remove(kHello));
  }
  SUBCASE("absent") { CHECK_FALSE(store.remove(kOther)); }
}

TEST_CASE("FsBlobStore::clean_temp") {
  Scratch s;
  auto store = open_store(s.dir);
  REQUIRE(store.write(kHello, "hello"));
  write_file(store.upload_key("keep"), "partial");
  SUBCASE("removes leftovers and keeps blobs and uploads") {
    write_file(store.tmp_dir() / "upload-x", "junk");
    write_file(store.tmp_dir() / "write-abc", "junk");
    fs::create_directories(store.tmp_dir() / "dir" / "sub");
    store.clean_temp();
    CHECK(fs::is_empty(store.tmp_dir()));
    CHECK(store.stat(kHello) == 5u);
    CHECK(fs::exists(store.upload_key("keep")));
  }
  SUBCASE("an empty tmp stays") {
    store.clean_temp();
    CHECK(fs::is_directory(store.tmp_dir()));
  }
}
