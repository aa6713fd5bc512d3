#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
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

namespace {

// Copies `v` over b[pos..pos+v.size()) without changing b's size.
void put(std::string& b, size_t pos, std::string_view v) { b.replace(pos, v.size(), v); }

// A raw ustar header block with the given 12-byte size field and type, and a correct checksum.
std::string raw_header(const std::string& name, const std::string& size_field, char type) {
  std::string b(512, '\0');
  put(b, 0, std::string_view(name).substr(0, 100));
  put(b, 100, "0000644");
  put(b, 108, "0000000");
  put(b, 116, "0000000");
  put(b, 124, std::string_view(size_field).substr(0, 12));
  put(b, 136, "00000000000");
  b[156] = type;
  put(b, 257, std::string_view("ustar\0", 6));
  put(b, 263, "00");
  put(b, 148, "        ");
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  char field[8];
  std::snprintf(field, sizeof field, "%06o", sum);
  put(b, 148, std::string_view(field, 7));  // six digits and a NUL; b[155] stays a space
  REQUIRE(b.size() == 512);
  return b;
}

std::string octal12(uint64_t v) {
  char f[13];
  std::snprintf(f, sizeof f, "%011llo", static_cast<unsigned long long>(v));
  return std::string(f, 11) + '\0';
}

std::string padded(std::string body) {
  body.resize((body.size() + 511) / 512 * 512, '\0');
  return body;
}

// An archive: one pax extended header with `records`, then a file "f" holding "abc", then the end marker.
std::string pax_archive(const std::string& records) {
  return raw_header("PaxHeaders/f", octal12(records.size()), 'x') + padded(records) +
         raw_header("f", octal12(3), '0') + padded("abc") + std::string(1024, '\0');
}

std::expected<std::vector<File>, std::string> read_bytes(const Scratch& s, const std::string& bytes) {
  const fs::path p = s.dir / "hostile.tar";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  ::close(fd);
  return read_archive(p);
}

}  // namespace

TEST_CASE("TarReader treats pax headers as hostile") {
  Scratch s;
  SUBCASE("well-formed path and size records apply to the next entry") {
    auto got = read_bytes(s, pax_archive("22 path=dir/long/name\n"));
    REQUIRE(got);
    REQUIRE(got->size() == 1);
    CHECK(got->at(0).name == "dir/long/name");
    CHECK(got->at(0).body == "abc");
  }
  SUBCASE("a record length with a sign, spaces, junk, zero or overflow is refused, never looped on") {
    // The first two looped forever: strtoull read " -1" as 2^64-1, and pos + len wrapped backwards.
    for (const char* records : {"7 a=12\n -1 x\n", "5 a=\n-5 x=y\n", " -1 path=x\n", "-1 path=x\n", "+9 path=x\n", "0 path=x\n", "3 path=x\n",
                                "99999999999999999999 path=x\n", "18446744073709551615 path=x\n",
                                "1e3 path=x\n", "11 path=x\n\n\n", "path=x\n", "12 path=x\nX", "5 =x\n",
                                "9 nokey\n\n", "8 size=\n", "11 size=-1\n", "29 size=99999999999999999999\n",
                                "10 path=x\n7 path"}) {
      CAPTURE(records);
      auto got = read_bytes(s, pax_archive(records));
      REQUIRE_FALSE(got);
      CHECK(got.error().find("corrupt pax header") != std::string::npos);
    }
  }
  SUBCASE("a pax size beyond the data is a truncation, not a hang") {
    auto got = read_bytes(s, pax_archive("28 size=9223372036854775000\n"));
    REQUIRE_FALSE(got);
    CHECK(got.error().find("truncated") != std::string::npos);
  }
}

TEST_CASE("TarReader refuses hostile size fields") {
  Scratch s;
  auto with_size = [&](const std::string& field) {
    return read_bytes(s, raw_header("f", field, '0') + padded("abc") + std::string(1024, '\0'));
  };
  SUBCASE("octal with trailing junk or a sign") {
    for (std::string f : {std::string("0000000003x\0", 12), std::string("-0000000003\0", 12),
                          std::string("\0\0\0\0\0\0\0\0\0\0\0\0", 12), std::string("           \0", 12)}) {
      auto got = with_size(f);
      REQUIRE_FALSE(got);
      CAPTURE(got.error());
      CHECK(got.error().find("bad size") != std::string::npos);
    }
  }
  SUBCASE("base-256: negative, or beyond int64") {
    auto negative = with_size(std::string(12, '\xff'));
    REQUIRE_FALSE(negative);
    CHECK(negative.error().find("bad size") != std::string::npos);
    std::string huge(12, '\xff');
    huge[0] = '\x80';
    auto big = with_size(huge);
    REQUIRE_FALSE(big);
    CHECK(big.error().find("bad size") != std::string::npos);
  }
  SUBCASE("base-256 small values are read") {
    std::string three(12, '\0');
    three[0] = '\x80';
    three[11] = 3;
    auto got = with_size(three);
    REQUIRE(got);
    CHECK(got->at(0).body == "abc");
  }
  SUBCASE("octal with leading spaces and trailing space is read") {
    auto got = with_size(std::string("         3 \0", 12));
    REQUIRE(got);
    CHECK(got->at(0).body == "abc");
  }
  SUBCASE("a metadata entry over 1 MiB is refused before it is read") {
    auto got = read_bytes(s, raw_header("PaxHeaders/f", octal12(2u << 20), 'x') + std::string(1024, '\0'));
    REQUIRE_FALSE(got);
    CHECK(got.error().find("too large") != std::string::npos);
  }
  SUBCASE("an 8 GiB entry in a short file is a truncation") {
    auto got = read_bytes(s, raw_header("f", octal12(077777777777ULL), '0') + std::string(1024, '\0'));
    REQUIRE_FALSE(got);
    CHECK(got.error().find("truncated") != std::string::npos);
  }
}
