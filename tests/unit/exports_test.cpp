// tests/unit/exports_test.cpp — the .so exports exactly the symbols of
// interpose/table.def plus the mnp_* API: nothing interposed by accident,
// nothing in the table left unimplemented.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
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
    if (sscanf(buf, "%63s %7s %399s", addr, type, name) == 3 && (type[0] == 'T' || type[0] == 'W' || type[0] == 'D' || type[0] == 'B' || type[0] == 'R')) {
      std::string n(name);
      auto at = n.find('@');
      if (at != std::string::npos) n = n.substr(0, at);
      have.insert(n);
    }
  }
  ASSERT_EQ(pclose(p), 0);
  // Every call of the hand-off X-macro list must be in the table too (an
  // entry missing there compiles but is never exported).
  std::ifstream src(g_argv[3]);
  std::string all((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
  std::regex xre("X\\((\\w+), \"GLIBC");
  for (auto it = std::sregex_iterator(all.begin(), all.end(), xre); it != std::sregex_iterator(); ++it)
    EXPECT_TRUE(want.count((*it)[1])) << "interpose/syscall.cpp wraps " << (*it)[1] << " but the table does not list it";
  for (auto& s : want) EXPECT_TRUE(have.count(s)) << "table lists " << s << " but the .so does not export it";
  for (auto& s : have) EXPECT_TRUE(want.count(s)) << "the .so exports " << s << " which the table does not list";
}

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  g_argv = argv;
  if (argc < 4) return 2;
  return RUN_ALL_TESTS();
}
