// tests/unit/exports_test.cpp — the .so exports exactly the symbols of
// interpose/table.def plus the mnp_* API: nothing interposed by accident,
// nothing in the table left unimplemented; and it needs no C++ runtime.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <string>

static char** g_argv;

TEST(Exports, MatchTable) {
  std::set<std::string> want = {"mnp_version", "mnp_procs", "mnp_mcount"};
  std::ifstream in(g_argv[2]);
  std::string line;
  std::regex re("^MNP_SYM\\((\\w+),");
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, re)) want.insert(m[1]);
  ASSERT_GT(want.size(), 10u);
  std::string cmd = std::string("nm -D --defined-only ") + g_argv[1];
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::set<std::string> have;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) {
    char addr[64], type[8], name[400];
    if (sscanf(buf, "%63s %7s %399s", addr, type, name) == 3 &&
        (type[0] == 'T' || type[0] == 'W' || type[0] == 'D' || type[0] == 'B' || type[0] == 'R')) {
      std::string n(name);
      auto at = n.find('@');
      if (at != std::string::npos) n = n.substr(0, at);
      have.insert(n);
    }
  }
  ASSERT_EQ(pclose(p), 0);
  // Every function defined with MNP_EXPORT in interpose/ must be in the
  // table too: one missing there compiles but is never exported, so the
  // program calls glibc's. (The hand-off X-macro list needs no look: an
  // entry not in the table has no real_NAME and does not compile.)
  std::regex ere("MNP_EXPORT\\s+[^;{()#]*?\\b(\\w+)\\s*\\(");
  int defined = 0;
  for (const auto& f : std::filesystem::directory_iterator(g_argv[3])) {
    auto ext = f.path().extension();
    if (ext != ".cpp" && ext != ".c" && ext != ".h") continue;
    std::ifstream src(f.path());
    std::string all((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::map<std::string, std::string> labels;
    auto check = [&](std::string name) {
      defined++;
      EXPECT_TRUE(want.count(name)) << f.path().filename() << " defines " << name
                                    << " for export but the table does not list it";
    };
    for (auto it = std::sregex_iterator(all.begin(), all.end(), ere); it != std::sregex_iterator(); ++it) {
      size_t at = static_cast<size_t>(it->position(0));
      if (at >= 8 && all.compare(at - 8, 8, "#define ") == 0) continue;  // the macro itself
      std::string name = (*it)[1];
      if (name == "name") continue;  // the X-macro's template
      // A C name with an asm label (int mnp_x(...) __asm__("x")) exports the
      // label; the definition may come later without it.
      size_t end = all.find_first_of(";{", at);
      size_t label = all.find("__asm__(\"", at);
      if (label != std::string::npos && label < end) {
        label += 9;
        labels[name] = all.substr(label, all.find('"', label) - label);
      }
      if (labels.count(name)) name = labels[name];
      check(name);
    }
  }
  EXPECT_GT(defined, 100);
  for (auto& s : want) EXPECT_TRUE(have.count(s)) << "table lists " << s << " but the .so does not export it";
  for (auto& s : have) EXPECT_TRUE(want.count(s)) << "the .so exports " << s << " which the table does not list";
}

// Every process the shim is preloaded into loads what it needs: it needs
// libc (and libgcc_s, for once.c's unwinding) and nothing of C++'s. A C++
// construct that calls into libstdc++ (a function-local static with a
// dynamic initialiser takes __cxa_guard_acquire) added libstdc++ and libm
// to every process start: 20 system calls of /bin/true's 93.
TEST(Exports, NeedsNoCxxRuntime) {
  std::string cmd = std::string("readelf -d ") + g_argv[1];
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string needed;
  char buf[512];
  while (fgets(buf, sizeof buf, p))
    if (strstr(buf, "(NEEDED)")) needed += buf;
  ASSERT_EQ(pclose(p), 0);
  ASSERT_NE(needed.find("libc.so"), std::string::npos) << needed;
  if (needed.find("libasan") != std::string::npos || needed.find("libubsan") != std::string::npos)
    GTEST_SKIP() << "a sanitizer build needs its runtimes";
  EXPECT_EQ(needed.find("libstdc++"), std::string::npos) << needed;
  EXPECT_EQ(needed.find("libm.so"), std::string::npos) << needed;
}

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  g_argv = argv;
  if (argc < 4) return 2;
  return RUN_ALL_TESTS();
}
