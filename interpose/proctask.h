// interpose/proctask.h — /proc/self/task/<id>/stat of a G (proctask.cpp).
#pragma once

#include <string.h>

#include "core/base.h"

namespace mnp {

// open/openat of an absolute path under /proc/ (the caller's cheap test:
// proc_task_try_open): if it names the stat file of a live G, *fd gets a
// file holding that G's line and the result is true; false leaves the
// open to the kernel.
bool proc_task_open(const char* path, int flags, int* fd);
inline bool proc_task_try_open(const char* path, int flags, int* fd) {
  return MNP_UNLIKELY(path && strncmp(path, "/proc/", 6) == 0) && proc_task_open(path, flags, fd);
}
// close: fd is forgotten (before the kernel closes it).
void proc_task_close(int fd);
// fd seeked to 0 (lseek, interpose/proctask.cpp): its line is written again.
void proc_task_rewind(int fd);

}  // namespace mnp
