#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "src/commands/tar.hpp"

using namespace wharf::commands;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed at the end of the scope.
struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/wharf-tar-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

struct File {
  std::string name;
  std::string body;
};

void write_archive(const fs::path& p, const std::vector<File>& files) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  TarWriter w(fd);
  for (const auto& f : files) REQUIRE(w.add(f.name, f.body));
  REQUIRE(w.finish());
  ::close(fd);
}

// Reads every entry; returns the error message if reading fails.
std::expected<std::vector<File>, std::string> read_archive(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  TarReader r(fd);
  std::vector<File> out;
  for (;;) {
    auto e = r.next();
    if (!e) {
      ::close(fd);
      return std::unexpected(e.error());
    }
    if (!*e) break;
    File f{(*e)->name, {}};
    char buf[1000];
    for (;;) {
      auto n = r.read(buf, sizeof buf);
      if (!n) {
        ::close(fd);
        return std::unexpected(n.error());
      }
      if (*n == 0) break;
      f.body.append(buf, *n);
    }
    out.push_back(std::move(f));
  }
  ::close(fd);
  return out;
}

std::string blob(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(seed + i * 7);
  return s;
}

}  // namespace

TEST_CASE("TarWriter and TarReader round-trip") {
  Scratch s;
  const fs::path p = s.dir / "a.tar";
  SUBCASE("short names, empty and multi-block bodies") {
    std::vector<File> files = {{"oci-layout", "{}"}, {"empty", ""}, {"blobs/sha256/abc", blob(5000, 'a')}};
    write_archive(p, files);
    CHECK(fs::file_size(p) % 512 == 0);
    auto got = read_archive(p);
    REQUIRE(got);
    REQUIRE(got->size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK((*got)[i].name == files[i].name);
      CHECK((*got)[i].body == files[i].body);
    }
  }
  SUBCASE("long names go through pax headers") {
    std::string name = "blobs/sha512/" + std::string(128, 'f');
    write_archive(p, {{name, "x"}, {"after", "y"}});
    auto got = read_archive(p);
    REQUIRE(got);
    REQUIRE(got->size() == 2);
    CHECK((*got)[0].name == name);
    CHECK((*got)[0].body == "x");
    CHECK((*got)[1].name == "after");
  }
  SUBCASE("entries may be skipped without reading their bodies") {
    write_archive(p, {{"one", blob(1500, 'b')}, {"two", "2"}});
    int fd = ::open(p.c_str(), O_RDONLY);
    TarReader r(fd);
    auto a = r.next();
    REQUIRE((a && *a));
    auto b = r.next();
    REQUIRE((b && *b));
    CHECK((*b)->name == "two");
    auto end = r.next();
    CHECK((end && !*end));
    ::close(fd);
  }
}

TEST_CASE("TarReader reads GNU long names") {
  Scratch s;
  const fs::path p = s.dir / "gnu.tar";
  std::string name = std::string(150, 'n') + "/file";
  // Build a GNU archive with tar(1) itself when available.
  fs::create_directories(s.dir / "src" / std::string(150, 'n'));
  {
    int fd = ::open((s.dir / "src" / name).c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "gnu", 3) == 3);
    ::close(fd);
  }
  std::string cmd = "tar --format=gnu -C " + (s.dir / "src").string() + " -cf " + p.string() + " " + name;
  if (std::system(cmd.c_str()) != 0) return;  // no tar(1): nothing to compare with
  auto got = read_archive(p);
  REQUIRE(got);
  REQUIRE(got->size() == 1);
  CHECK(got->at(0).name == name);
  CHECK(got->at(0).body == "gnu");
}

TEST_CASE("TarReader refuses damaged archives") {
  Scratch s;
  const fs::path p = s.dir / "d.tar";
  write_archive(p, {{"blobs/sha256/x", blob(3000, 'c')}, {"index.json", "{}"}});
  const auto size = fs::file_size(p);
  SUBCASE("truncated inside a body") {
    fs::resize_file(p, 512 + 1000);
    auto got = read_archive(p);
    REQUIRE_FALSE(got);
    CHECK(got.error().find("truncated in blobs/sha256/x") != std::string::npos);
  }
  SUBCASE("truncated before the end marker") {
    fs::resize_file(p, size - 1024);
    auto got = read_archive(p);
    REQUIRE_FALSE(got);
    CHECK(got.error().find("end-of-archive") != std::string::npos);
  }
  SUBCASE("a flipped header byte fails the checksum") {
    int fd = ::open(p.c_str(), O_RDWR);
    char c;
    REQUIRE(::pread(fd, &c, 1, 3) == 1);
    c ^= 1;
    REQUIRE(::pwrite(fd, &c, 1, 3) == 1);
    ::close(fd);
    auto got = read_archive(p);
    REQUIRE_FALSE(got);
    CHECK(got.error().find("checksum") != std::string::npos);
  }
}

TEST_CASE("TarWriter checks entry sizes") {
  Scratch s;
  int fd = ::open((s.dir / "w.tar").c_str(), O_WRONLY | O_CREAT, 0644);
  TarWriter w(fd);
  REQUIRE(w.begin("f", 3));
  CHECK_FALSE(w.write("abcd", 4));
  REQUIRE(w.write("ab", 2));
  CHECK_FALSE(w.end());
  REQUIRE(w.write("c", 1));
  CHECK(w.end());
  CHECK(w.finish());
  ::close(fd);
}
