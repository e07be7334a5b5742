// tests/unit/config_test.cpp — environment parsing. Regression: the default
// MNP_PROCS once counted bits of an uninitialised cpu_set_t beyond what the
// kernel wrote, giving a random number of Ps (up to 1024) and as many Ms.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "core/sched.h"

using namespace mnp;

TEST(Config, DefaultProcsIsUsableCpus) {
  unsetenv("MNP_PROCS");
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  config_init();
  EXPECT_GE(config().procs, 1u);
  EXPECT_LE(config().procs, static_cast<uint32_t>(CPU_COUNT(&set)));
}

TEST(Config, ExplicitProcsAndBadValuesFallBack) {
  unsetenv("MNP_PROCS");
  config_init();
  const uint32_t dflt = config().procs;
  setenv("MNP_PROCS", "3", 1);
  config_init();
  EXPECT_EQ(config().procs, 3u);
  setenv("MNP_PROCS", "1024", 1);
  config_init();
  EXPECT_EQ(config().procs, 1024u) << "the upper bound itself is accepted";
  // Each of these would give a number of Ps in range if the parser took it
  // (a size suffix, a sign, a leading blank, a trailing blank) or is out of
  // range by one: every one must give the default, exactly.
  for (const char* bad : {"0", "1025", "1k", "1K", "+2", "-2", " 2", "2 ", "2x", "abc", ""}) {
    setenv("MNP_PROCS", bad, 1);
    config_init();
    EXPECT_EQ(config().procs, dflt) << "MNP_PROCS=\"" << bad << "\"";
  }
  unsetenv("MNP_PROCS");
}

TEST(Config, StackSizeSuffixesAndLimits) {
  setenv("MNP_STACK", "256K", 1);
  config_init();
  EXPECT_EQ(config().stack_size, 256u * 1024);
  setenv("MNP_STACK", "2m", 1);
  config_init();
  EXPECT_EQ(config().stack_size, 2u << 20);
  setenv("MNP_STACK", "1", 1);  // too small: default (RLIMIT_STACK, 8 MiB if unlimited)
  config_init();
  EXPECT_GE(config().stack_size, 64u * 1024);
  unsetenv("MNP_STACK");
}

TEST(Config, PreemptSignalDebugAreParsedInTheTable) {
  setenv("MNP_PREEMPT", "0", 1);
  setenv("MNP_SIGNAL", "12", 1);
  setenv("MNP_DEBUG", "schedtrace=250,scheddetail=1", 1);
  config_init();
  EXPECT_FALSE(config().preempt);
  EXPECT_EQ(config().signal, 12);
  EXPECT_EQ(config().schedtrace_ms, 250);
  EXPECT_TRUE(config().scheddetail);
  // Bad values keep the defaults; a key must match whole ("sched" is not
  // "schedtrace"), and good items of a partly bad MNP_DEBUG still count.
  setenv("MNP_PREEMPT", "yes", 1);
  setenv("MNP_SIGNAL", "9", 1);
  setenv("MNP_DEBUG", "sched=5,scheddetail=1,schedtrace=-3", 1);
  config_init();
  EXPECT_TRUE(config().preempt);
  EXPECT_EQ(config().signal, SIGURG);
  EXPECT_EQ(config().schedtrace_ms, 0);
  EXPECT_TRUE(config().scheddetail);
  for (const char* bad : {"33", "32", "19", "65", "0", "12x", ""}) {
    setenv("MNP_SIGNAL", bad, 1);
    config_init();
    EXPECT_EQ(config().signal, SIGURG) << bad;
  }
  unsetenv("MNP_PREEMPT");
  unsetenv("MNP_SIGNAL");
  unsetenv("MNP_DEBUG");
}
