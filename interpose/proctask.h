// interpose/proctask.h — /proc/self/task/<id>/stat of a G (proctask.cpp).
#pragma once

namespace mnp {

// open/openat of an absolute path: if it names the stat file of a live G,
// *fd gets a file holding that G's line and the result is true; false
// leaves the open to the kernel.
bool proc_task_open(const char* path, int flags, int* fd);
// close: fd is forgotten (before the kernel closes it).
void proc_task_close(int fd);
// fd seeked to 0 (lseek, interpose/proctask.cpp): its line is written again.
void proc_task_rewind(int fd);

}  // namespace mnp
