// core/futex.cpp — slow paths of Lock and Note.
#include "core/futex.h"

#include <time.h>

namespace mnp {

void Lock::lock_slow() {
  // Spin a little: runtime sections are short and usually on another CPU.
  for (int i = 0; i < 100; i++) {
    uint32_t c = word_.load(std::memory_order_relaxed);
    if (c == 0 && word_.compare_exchange_weak(c, 1, std::memory_order_acquire)) return;
    cpu_relax();
  }
  // Announce a sleeper by moving to 2; whoever unlocks then wakes one.
  while (word_.exchange(2, std::memory_order_acquire) != 0) futex_wait(&word_, 2);
}

bool Note::sleep_for(int64_t ns) {
  int64_t deadline = nanotime() + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    int64_t left = deadline - nanotime();
    if (left <= 0) return false;
    struct timespec ts = {static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    futex_wait(&key_, 0, &ts);
  }
  return true;
}

}  // namespace mnp
