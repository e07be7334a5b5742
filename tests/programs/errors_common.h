/* errors_common.h — reporting helpers of the errors_* programs.
 *
 * Each check prints one line: its name, the value returned and the errno
 * name (or "=" when errno kept the sentinel value set just before the
 * call).  Nothing is asserted here: the runner compares these lines with
 * the native run's, so glibc's own answer is the expectation. */
#ifndef MNP_TESTS_PROGRAMS_ERRORS_COMMON_H
#define MNP_TESTS_PROGRAMS_ERRORS_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ERR_SENTINEL EXDEV

static inline const char* err_name(int e) {
  if (e == 0) return "0";
  const char* n = strerrorname_np(e);
  return n ? n : "?";
}

static inline void err_line(const char* what, long rc, int err) {
  /* rc is an error number for pthread-style calls, a value otherwise */
  if (rc > 0 && rc < 4096) printf("%s: %s", what, err_name((int)rc));
  else printf("%s: %ld", what, rc);
  if (err == ERR_SENTINEL) printf(" errno =\n");
  else printf(" errno %s\n", err_name(err));
  fflush(stdout);
}

/* Evaluates expr with errno set to the sentinel; prints its value and errno. */
#define CHECK_RC(what, expr)   \
  do {                         \
    errno = ERR_SENTINEL;      \
    long rc_ = (long)(expr);   \
    int e_ = errno;            \
    err_line((what), rc_, e_); \
  } while (0)

/* For calls returning an error number directly (pthread_*): prints it by name. */
#define CHECK_EN(what, expr) CHECK_RC(what, expr)

/* Same for calls returning -1/errno where the value is a count or 0. */
#define CHECK_SYS(what, expr)                                                           \
  do {                                                                                  \
    errno = ERR_SENTINEL;                                                               \
    long rc_ = (long)(expr);                                                            \
    int e_ = errno;                                                                     \
    printf("%s: %ld errno %s\n", (what), rc_, e_ == ERR_SENTINEL ? "=" : err_name(e_)); \
    fflush(stdout);                                                                     \
  } while (0)

#endif
