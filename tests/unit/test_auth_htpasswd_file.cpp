#include <crypt.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "src/auth/htpasswd_file.hpp"

using namespace wharf::auth;

namespace {

struct Scratch {
  std::filesystem::path dir;
  Scratch() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-htfile-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

std::string hash(const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  REQUIRE(crypt_gensalt_rn("$2b$", 4, nullptr, 0, setting, sizeof setting) != nullptr);
  crypt_data data{};
  const char* out = crypt_r(password.c_str(), setting, &data);
  REQUIRE(out != nullptr);
  return out;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Replaces `p` the way editors and config management do: a new file renamed over the old one.
void replace(const std::filesystem::path& p, const std::string& text) {
  write(p.string() + ".new", text);
  std::filesystem::rename(p.string() + ".new", p);
}

}  // namespace

TEST_CASE("HtpasswdFile::users") {
  Scratch s;
  const auto path = s.dir / "htpasswd";
  const std::string alice = "alice:" + hash("a") + "\n";
  const std::string bob = "bob:" + hash("b") + "\n";
  write(path, alice + bob);
  auto f = HtpasswdFile::open(path);
  REQUIRE(f);
  REQUIRE(f->users());
  CHECK(f->users()->verify("alice", "a"));
  CHECK_FALSE(f->problem());

  SUBCASE("a deleted file leaves no users, and coming back restores them") {
    std::filesystem::remove(path);
    CHECK(f->users() == nullptr);
    REQUIRE(f->problem());
    CHECK(f->problem()->find(path.string()) != std::string::npos);
    const auto gen = f->generation();
    CHECK(f->users() == nullptr);
    CHECK(f->generation() == gen);  // a file that stays missing is not re-read on every call
    write(path, alice);
    REQUIRE(f->users());
    CHECK(f->users()->verify("alice", "a"));
    CHECK_FALSE(f->problem());
  }
  SUBCASE("a malformed line leaves no users, not the previous ones") {
    replace(path, alice + "garbage-without-colon\n");
    CHECK(f->users() == nullptr);
    REQUIRE(f->problem());
    CHECK(f->problem()->find("line 2") != std::string::npos);
    replace(path, alice);
    REQUIRE(f->users());
    CHECK(f->users()->verify("alice", "a"));
  }
  SUBCASE("a removed user is gone at once") {
    replace(path, bob);
    REQUIRE(f->users());
    CHECK_FALSE(f->users()->verify("alice", "a"));
    CHECK(f->users()->verify("bob", "b"));
  }
  SUBCASE("a change with the same size and mtime is noticed through the inode and ctime") {
    struct stat before{};
    REQUIRE(::stat(path.c_str(), &before) == 0);
    // Same length, same mtime, another user: only the inode (rename) and ctime tell.
    std::string carol = "carol:" + hash("c") + "\n";
    REQUIRE(carol.size() == alice.size());
    const std::string other = carol + bob;
    REQUIRE(other.size() == (alice + bob).size());
    write(path.string() + ".new", other);
    const timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, (path.string() + ".new").c_str(), times, 0) == 0);
    std::filesystem::rename(path.string() + ".new", path);
    REQUIRE(f->users());
    CHECK_FALSE(f->users()->verify("alice", "a"));
    CHECK(f->users()->verify("carol", "c"));
  }
  SUBCASE("reload re-reads even an unchanged file and bumps the generation") {
    const auto gen = f->generation();
    auto before = f->users();
    f->reload();
    CHECK(f->generation() == gen + 1);
    CHECK(f->users() != before);
  }
  SUBCASE("an unreadable file at open is an error naming it") {
    auto missing = HtpasswdFile::open(s.dir / "nope");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().find("nope") != std::string::npos);
  }
}
