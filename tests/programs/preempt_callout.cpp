/* preempt_callout — CPU hogs whose stacks hold a library's frame below
 * the program's code: a std::thread (libstdc++'s thread entry calls the
 * program's function), std::async (the task runs inside call_once, that is
 * inside pthread_once), and a qsort comparator (libc calls the program).
 * None of them ever reaches a scheduling point. A ticker sleeps 5 ms a
 * hundred times and reports its worst gap between ticks (worst_gap_ms);
 * main joins everything. With more hogs than Ps, the ticker and main run
 * again only if sysmon preempts the hogs asynchronously, and the stack walk
 * that allows it must pass the library frames (a switch there is what a
 * call from the hog into the runtime would do). Before that, the program
 * never ended: std::thread workers that spin were never preempted.
 *
 * Then the one library frame that must stop a switch: a hog inside a
 * dl_iterate_phdr callback holds the loader's lock, which the stack walk of
 * every other G's preemption takes. Beside it, plain hogs (one per P) that
 * it stops when its callback ends. Were it switched away, the next walk
 * would wait for it with its P, for good at 1 P. */
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "mnp_check.h"

namespace {

std::atomic<bool> stop{false};
std::atomic<int> hogging{0};
volatile unsigned long sink;

// No calls inside the loop: no scheduling point.
unsigned long hog() {
  hogging.fetch_add(1);
  unsigned long x = 1;
  while (!stop.load(std::memory_order_relaxed)) x = x * 6364136223846793005UL + 1442695040888963407UL;
  sink = x;
  return x;
}

// The first comparison hogs; the sort then ends normally.
int hog_compare(const void* a, const void* b) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true)) hog();
  int x = *static_cast<const int*>(a), y = *static_cast<const int*>(b);
  return (x > y) - (x < y);
}

void* sorter(void* out) {
  int v[64];
  for (int i = 0; i < 64; i++) v[i] = (i * 37) % 64;
  qsort(v, 64, sizeof v[0], hog_compare);
  bool sorted = true;
  for (int i = 0; i < 64; i++) sorted = sorted && v[i] == i;
  *static_cast<bool*>(out) = sorted;
  return nullptr;
}

void* ticker(void*) {
  // Starts when every hog spins, so each tick competes with all of them.
  while (hogging.load() < 3) usleep(1000);
  double worst = mnp_worst_tick_gap_ms(100, 5000);
  stop.store(true);
  mnp_check("worst_gap_ms", static_cast<long long>(worst));
  return nullptr;
}

std::atomic<bool> phdr_done{false};

// About a quarter of a second of work with no call in it.
int phdr_hog(struct dl_phdr_info*, size_t, void*) {
  unsigned long x = 1;
  for (unsigned long i = 0; i < (1UL << 28); i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
  sink = x;
  return 1;  // one callback is enough
}

void* phdr_holder(void*) {
  dl_iterate_phdr(phdr_hog, nullptr);
  phdr_done.store(true);
  return nullptr;
}

void* plain_hog(void*) {
  unsigned long x = 1;
  while (!phdr_done.load(std::memory_order_relaxed)) x = x * 6364136223846793005UL + 1442695040888963407UL;
  sink = x;
  return nullptr;
}

}  // namespace

int main() {
  mnp_report_shim();
  std::thread worker(hog);
  std::future<unsigned long> task = std::async(std::launch::async, hog);
  bool sorted = false;
  pthread_t s, t;
  pthread_create(&s, nullptr, sorter, &sorted);
  pthread_create(&t, nullptr, ticker, nullptr);
  pthread_join(t, nullptr);
  worker.join();
  task.get();
  pthread_join(s, nullptr);
  printf("ticker done, hogs stopped, sorted=%d\n", sorted ? 1 : 0);

  pthread_t holder, plain[2];
  for (pthread_t& p : plain) pthread_create(&p, nullptr, plain_hog, nullptr);
  pthread_create(&holder, nullptr, phdr_holder, nullptr);
  pthread_join(holder, nullptr);
  for (pthread_t p : plain) pthread_join(p, nullptr);
  puts("dl_iterate_phdr hog done");
  return sorted ? 0 : 1;
}
