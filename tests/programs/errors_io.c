/* errors_io — return values and errno of sleeps, fd calls, polling, process
 * waits and signal set-up at their edges, natively and under the shim
 * (issue 8, item 7).
 *
 * nanosleep / clock_nanosleep (bad timespec, bad clocks, CPU-time clocks,
 * absolute past times: clock_nanosleep returns the error, errno untouched),
 * usleep, sleep; poll / ppoll (nfds above RLIMIT_NOFILE, negative fds,
 * closed fds, bad timeouts); select / pselect (bad nfds, bad timeouts);
 * read / write / readv / writev / pread on bad, closed and wrong-kind fds;
 * accept, connect (refused, wrong kind), recv / send edges; epoll_wait
 * with bad maxevents and fds; waitpid / wait / waitid with no children and
 * bad options; sigwait / sigtimedwait bad timeouts; sigaction, signal and
 * siginterrupt on SIGKILL, SIGSTOP, 0, 65 and glibc's internal signals;
 * sigprocmask / pthread_sigmask with a bad `how` (with and without a set),
 * and whether the internal signals can be blocked; close / dup2 / dup3 /
 * pipe2 / close_range / fcntl edges; SYS_futex edges through syscall().
 * Each line prints the value and errno ("=" when errno was kept); the
 * runner compares them with glibc's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors_common.h"
#include "mnp_check.h"

static const struct timespec kBadNsec = {0, 1000000000L};
static const struct timespec kNegNsec = {0, -1};
static const struct timespec kNegSec = {-1, 0};
static const struct timespec kZero = {0, 0};

static void sleep_checks(void) {
  struct timespec rem = {7, 7};
  CHECK_SYS("nanosleep bad nsec", nanosleep(&kBadNsec, &rem));
  CHECK_SYS("nanosleep negative nsec", nanosleep(&kNegNsec, &rem));
  CHECK_SYS("nanosleep negative sec", nanosleep(&kNegSec, &rem));
  CHECK_SYS("nanosleep zero", nanosleep(&kZero, &rem));
  CHECK_SYS("nanosleep 1 ms", nanosleep(&(struct timespec){0, 1000000}, NULL));
  printf("rem untouched: %ld %ld\n", (long)rem.tv_sec, rem.tv_nsec);

  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec past = {now.tv_sec - 1, 0};
  CHECK_RC("clock_nanosleep realtime bad nsec", clock_nanosleep(CLOCK_REALTIME, 0, &kBadNsec, NULL));
  CHECK_RC("clock_nanosleep realtime negative sec", clock_nanosleep(CLOCK_REALTIME, 0, &kNegSec, NULL));
  CHECK_RC("clock_nanosleep abs bad nsec", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &kBadNsec, NULL));
  CHECK_RC("clock_nanosleep abs past", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &past, NULL));
  CHECK_RC("clock_nanosleep abs negative sec", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &kNegSec, NULL));
  CHECK_RC("clock_nanosleep monotonic zero", clock_nanosleep(CLOCK_MONOTONIC, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep clock 99", clock_nanosleep(99, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep clock -1", clock_nanosleep(-1, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep thread cputime", clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep process cputime zero", clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep process cputime abs past",
           clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &kZero, NULL));
  CHECK_RC("clock_nanosleep boottime zero", clock_nanosleep(CLOCK_BOOTTIME, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep tai zero", clock_nanosleep(CLOCK_TAI, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep monotonic_raw", clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep realtime_coarse", clock_nanosleep(CLOCK_REALTIME_COARSE, 0, &kZero, NULL));
  CHECK_RC("clock_nanosleep flags 2", clock_nanosleep(CLOCK_MONOTONIC, 2, &kZero, NULL));
  clockid_t pc;
  clock_getcpuclockid(getpid(), &pc);
  CHECK_RC("clock_nanosleep own process cpu clock", clock_nanosleep(pc, TIMER_ABSTIME, &kZero, NULL));
  CHECK_SYS("usleep 0", usleep(0));
  CHECK_SYS("usleep 1000", usleep(1000));
  CHECK_SYS("sleep 0", sleep(0));
}

static void poll_checks(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  int p[2];
  if (pipe(p) != 0) return;
  struct pollfd fds[3] = {{-1, POLLIN, 0}, {p[1], POLLOUT, 0}, {-5, POLLIN, 0}};
  CHECK_SYS("poll negative fds ignored", poll(fds, 3, 0));
  printf("revents %d %d %d\n", fds[0].revents, fds[1].revents, fds[2].revents);
  struct pollfd big[1] = {{-1, POLLIN, 0}};
  CHECK_SYS("poll nfds above RLIMIT_NOFILE", poll(big, (nfds_t)rl.rlim_cur + 1, 0));
  CHECK_SYS("poll nfds huge", poll(big, (nfds_t)1 << 40, 0));
  CHECK_SYS("poll nfds 0 timeout 0", poll(NULL, 0, 0));
  CHECK_SYS("poll nfds 0 timeout 1", poll(NULL, 0, 1));
  int c = dup(p[0]);
  close(c);
  struct pollfd cl = {c, POLLIN, 0};
  CHECK_SYS("poll closed fd", poll(&cl, 1, 0));
  printf("revents closed %d\n", cl.revents);
  CHECK_SYS("poll closed fd, timeout -1", poll(&cl, 1, -1));
  CHECK_SYS("poll closed fd, timeout -7", poll(&cl, 1, -7));
  CHECK_SYS("ppoll bad nsec", ppoll(fds, 3, &kBadNsec, NULL));
  CHECK_SYS("ppoll negative sec", ppoll(fds, 3, &kNegSec, NULL));
  CHECK_SYS("ppoll zero", ppoll(fds, 3, &kZero, NULL));
  CHECK_SYS("ppoll nfds above limit", ppoll(big, (nfds_t)rl.rlim_cur + 1, &kZero, NULL));
  struct pollfd pin = {p[0], POLLIN, 0};
  CHECK_SYS("poll empty pipe, 1 ms", poll(&pin, 1, 1));

  fd_set r;
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  struct timeval tv0 = {0, 0};
  CHECK_SYS("select nfds -1", select(-1, &r, NULL, NULL, &tv0));
  struct timeval tvbad = {0, 2000000};
  CHECK_SYS("select usec 2000000", select(p[0] + 1, &r, NULL, NULL, &tvbad));
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  struct timeval tvneg = {-1, 0};
  CHECK_SYS("select negative sec", select(p[0] + 1, &r, NULL, NULL, &tvneg));
  struct timeval tvnegu = {0, -1};
  CHECK_SYS("select negative usec", select(p[0] + 1, &r, NULL, NULL, &tvnegu));
  FD_ZERO(&r);
  CHECK_SYS("select nfds FD_SETSIZE+1", select(FD_SETSIZE + 1, &r, NULL, NULL, &tv0));
  CHECK_SYS("select nfds 1<<20", select(1 << 20, &r, NULL, NULL, &tv0));
  FD_ZERO(&r);
  FD_SET(c, &r);
  CHECK_SYS("select closed fd", select(c + 1, &r, NULL, NULL, &tv0));
  CHECK_SYS("select no fds zero timeout", select(0, NULL, NULL, NULL, &tv0));
  struct timeval tv1 = {0, 1000};
  CHECK_SYS("select no fds 1 ms", select(0, NULL, NULL, NULL, &tv1));
  printf("select timeout left %ld %ld\n", (long)tv1.tv_sec, (long)tv1.tv_usec);
  FD_ZERO(&r);
  FD_SET(p[0], &r);
  CHECK_SYS("pselect bad nsec", pselect(p[0] + 1, &r, NULL, NULL, &kBadNsec, NULL));
  CHECK_SYS("pselect negative sec", pselect(p[0] + 1, &r, NULL, NULL, &kNegSec, NULL));
  CHECK_SYS("pselect nfds -1", pselect(-1, &r, NULL, NULL, &kZero, NULL));

  int ep = epoll_create1(0);
  struct epoll_event ev[4];
  CHECK_SYS("epoll_wait maxevents 0", epoll_wait(ep, ev, 0, 0));
  CHECK_SYS("epoll_wait maxevents -1", epoll_wait(ep, ev, -1, 0));
  CHECK_SYS("epoll_wait maxevents 0, timeout -1", epoll_wait(ep, ev, 0, -1));
  CHECK_SYS("epoll_wait bad fd", epoll_wait(-1, ev, 4, 0));
  CHECK_SYS("epoll_wait closed fd, timeout -1", epoll_wait(987, ev, 4, -1));
  CHECK_SYS("epoll_wait not an epoll fd", epoll_wait(p[0], ev, 4, 0));
  CHECK_SYS("epoll_wait not an epoll fd, timeout -1", epoll_wait(p[0], ev, 4, -1));
  CHECK_SYS("epoll_wait empty, 1 ms", epoll_wait(ep, ev, 4, 1));
  CHECK_SYS("epoll_pwait maxevents 0", epoll_pwait(ep, ev, 0, 0, NULL));
  CHECK_SYS("epoll_pwait2 maxevents 0", epoll_pwait2(ep, ev, 0, &kZero, NULL));
  CHECK_SYS("epoll_pwait2 bad nsec", epoll_pwait2(ep, ev, 4, &kBadNsec, NULL));
  CHECK_SYS("epoll_pwait2 negative sec", epoll_pwait2(ep, ev, 4, &kNegSec, NULL));
  close(ep);
  close(p[0]);
  close(p[1]);
}

static void fd_checks(void) {
  char buf[8];
  int p[2];
  if (pipe(p) != 0) return;
  int c = dup(p[0]);
  close(c);
  CHECK_SYS("read -1", read(-1, buf, 1));
  CHECK_SYS("read closed", read(c, buf, 1));
  CHECK_SYS("read count 0", read(p[0], buf, 0));
  CHECK_SYS("read from write end", read(p[1], buf, 1));
  CHECK_SYS("write -1", write(-1, "x", 1));
  CHECK_SYS("write closed", write(c, "x", 1));
  CHECK_SYS("write to read end", write(p[0], "x", 1));
  CHECK_SYS("write count 0", write(p[1], "x", 0));
  struct iovec iov = {buf, 1};
  CHECK_SYS("readv iovcnt -1", readv(p[0], &iov, -1));
  CHECK_SYS("readv iovcnt 2000", readv(p[0], &iov, 2000));
  CHECK_SYS("writev iovcnt -1", writev(p[1], &iov, -1));
  CHECK_SYS("writev bad fd", writev(-1, &iov, 1));
  CHECK_SYS("readv iovcnt 0", readv(p[0], &iov, 0));
  CHECK_SYS("pread pipe", pread(p[0], buf, 1, 0));
  CHECK_SYS("pwrite pipe", pwrite(p[1], buf, 1, 0));
  CHECK_SYS("pread bad fd", pread(-1, buf, 1, 0));
  int f = open("/proc/self/stat", O_RDONLY);
  CHECK_SYS("pread negative offset", pread(f, buf, 1, -1));
  CHECK_SYS("preadv negative offset", preadv(f, &iov, 1, -1));
  close(f);
  CHECK_SYS("fsync -1", fsync(-1));
  CHECK_SYS("fsync pipe", fsync(p[0]));
  CHECK_SYS("fdatasync pipe", fdatasync(p[0]));
  CHECK_SYS("open missing", open("/nonexistent/mnp", O_RDONLY));
  CHECK_SYS("open bad flags dir+creat", open("/tmp", O_RDONLY | O_DIRECTORY | O_CREAT, 0600));
  CHECK_SYS("openat bad dirfd", openat(-5, "x", O_RDONLY));
  CHECK_SYS("fcntl -1", fcntl(-1, F_GETFL));
  CHECK_SYS("fcntl bad cmd", fcntl(p[0], 9999));
  CHECK_SYS("fcntl F_GETFD", fcntl(p[0], F_GETFD));
  CHECK_SYS("fcntl dupfd negative", fcntl(p[0], F_DUPFD, -1));
  CHECK_SYS("flock -1", flock(-1, LOCK_SH));
  CHECK_SYS("flock bad op", flock(p[0], 12345));
  CHECK_SYS("lockf bad cmd", lockf(p[0], 12345, 0));
  CHECK_SYS("lockf pipe", lockf(p[0], F_TLOCK, 0));
  CHECK_SYS("close -1", close(-1));
  CHECK_SYS("close closed", close(c));
  CHECK_SYS("dup2 to -1", dup2(p[0], -1));
  CHECK_SYS("dup2 from -1", dup2(-1, 50));
  CHECK_SYS("dup2 from closed", dup2(c, 50));
  CHECK_SYS("dup2 onto itself", dup2(p[0], p[0]) == p[0]);
  CHECK_SYS("dup2 closed onto itself", dup2(c, c));
  CHECK_SYS("dup3 onto itself", dup3(p[0], p[0], 0));
  CHECK_SYS("dup3 bad flags", dup3(p[0], 50, 12345));
  CHECK_SYS("dup3 to -1", dup3(p[0], -1, 0));
  int pp[2];
  CHECK_SYS("pipe2 bad flags", pipe2(pp, 12345));
  CHECK_SYS("close_range reversed", close_range(60, 50, 0));
  CHECK_SYS("close_range bad flags", close_range(60, 70, 12345));
  CHECK_SYS("close_range none open", close_range(900, 950, 0));
  CHECK_SYS("sendfile bad fds", sendfile(-1, -1, NULL, 1));
  CHECK_SYS("splice bad fds", splice(-1, NULL, -1, NULL, 1, 0));
  CHECK_SYS("copy_file_range bad fds", copy_file_range(-1, NULL, -1, NULL, 1, 0));
  CHECK_SYS("copy_file_range bad flags", copy_file_range(p[0], NULL, p[1], NULL, 1, 1));
  close(p[0]);
  close(p[1]);
}

static void socket_checks(void) {
  char buf[8];
  int p[2];
  if (pipe(p) != 0) return;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  CHECK_SYS("accept pipe", accept(p[0], NULL, NULL));
  CHECK_SYS("accept -1", accept(-1, NULL, NULL));
  CHECK_SYS("accept4 bad flags", accept4(p[0], NULL, NULL, 12345));
  int s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_SYS("accept not listening", accept(s, NULL, NULL));
  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  /* a free port: bind to 0, learn it, close */
  int tmp = socket(AF_INET, SOCK_STREAM, 0);
  bind(tmp, (struct sockaddr*)&sa, sizeof sa);
  getsockname(tmp, (struct sockaddr*)&sa, &sl);
  close(tmp);
  CHECK_SYS("connect refused", connect(s, (struct sockaddr*)&sa, sizeof sa));
  CHECK_SYS("connect again after refusal", connect(s, (struct sockaddr*)&sa, sizeof sa));
  /* a success, then a second connect: EISCONN */
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t ll = sizeof la;
  bind(ls, (struct sockaddr*)&la, sizeof la);
  listen(ls, 4);
  getsockname(ls, (struct sockaddr*)&la, &ll);
  int cs = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_SYS("connect listening", connect(cs, (struct sockaddr*)&la, sizeof la));
  CHECK_SYS("connect connected again", connect(cs, (struct sockaddr*)&la, sizeof la));
  int as = accept(ls, NULL, NULL);
  CHECK_SYS("accept pending", as >= 0);
  close(as);
  close(cs);
  close(ls);
  CHECK_SYS("connect pipe", connect(p[0], (struct sockaddr*)&sa, sizeof sa));
  CHECK_SYS("connect -1", connect(-1, (struct sockaddr*)&sa, sizeof sa));
  int s2 = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_SYS("connect bad addrlen", connect(s2, (struct sockaddr*)&sa, 3));
  CHECK_SYS("connect family mismatch", connect(s2, (struct sockaddr*)&(struct sockaddr_in6){.sin6_family = AF_INET6},
                                               sizeof(struct sockaddr_in6)));
  CHECK_SYS("connect nonblocking refused", connect(nb, (struct sockaddr*)&sa, sizeof sa));
  struct pollfd pf = {nb, POLLOUT, 0};
  poll(&pf, 1, 5000);
  int soerr = 0;
  socklen_t el = sizeof soerr;
  getsockopt(nb, SOL_SOCKET, SO_ERROR, &soerr, &el);
  printf("nonblocking connect SO_ERROR %s\n", err_name(soerr));
  CHECK_SYS("recv unconnected", recv(s2, buf, 1, 0));
  CHECK_SYS("recv unconnected dontwait", recv(s2, buf, 1, MSG_DONTWAIT));
  CHECK_SYS("send unconnected", send(s2, "x", 1, MSG_NOSIGNAL));
  CHECK_SYS("recv pipe", recv(p[0], buf, 1, 0));
  CHECK_SYS("send pipe", send(p[1], "x", 1, 0));
  CHECK_SYS("recvfrom -1", recvfrom(-1, buf, 1, 0, NULL, NULL));
  CHECK_SYS("sendto -1", sendto(-1, "x", 1, 0, NULL, 0));
  struct msghdr mh = {0};
  CHECK_SYS("recvmsg -1", recvmsg(-1, &mh, 0));
  CHECK_SYS("sendmsg -1", sendmsg(-1, &mh, 0));
  CHECK_SYS("recvmmsg -1", recvmmsg(-1, NULL, 1, 0, NULL));
  CHECK_SYS("sendmmsg -1", sendmmsg(-1, NULL, 1, 0));
  int sp[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
  CHECK_SYS("recv empty dontwait", recv(sp[0], buf, 1, MSG_DONTWAIT));
  CHECK_SYS("recvmmsg bad timeout",
            recvmmsg(sp[0], &(struct mmsghdr){0}, 1, MSG_DONTWAIT, (struct timespec*)&kBadNsec));
  close(sp[1]);
  CHECK_SYS("recv peer closed", recv(sp[0], buf, 1, 0));
  CHECK_SYS("send peer closed nosignal", send(sp[0], "x", 1, MSG_NOSIGNAL));
  close(sp[0]);
  close(s);
  close(s2);
  close(nb);
  close(p[0]);
  close(p[1]);
}

static void wait_checks(void) {
  int st;
  siginfo_t si;
  CHECK_SYS("waitpid -1 no children", waitpid(-1, &st, 0));
  CHECK_SYS("waitpid -1 no children WNOHANG", waitpid(-1, &st, WNOHANG));
  CHECK_SYS("waitpid bad options", waitpid(-1, &st, 0x7fff0000));
  CHECK_SYS("wait no children", wait(&st));
  CHECK_SYS("wait4 no children", wait4(-1, &st, 0, NULL));
  CHECK_SYS("waitid P_ALL no children", waitid(P_ALL, 0, &si, WEXITED));
  CHECK_SYS("waitid no options", waitid(P_ALL, 0, &si, 0));
  CHECK_SYS("waitid bad idtype", waitid((idtype_t)99, 0, &si, WEXITED));
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  CHECK_SYS("waitpid child", waitpid(pid, &st, 0) == pid);
  printf("child status %d\n", WEXITSTATUS(st));
  CHECK_SYS("waitpid child again", waitpid(pid, &st, 0));
  CHECK_SYS("system(NULL)", system(NULL) != 0);
}

static void signal_checks(void) {
  struct sigaction sa = {0}, old;
  sa.sa_handler = SIG_IGN;
  CHECK_SYS("sigaction SIGKILL", sigaction(SIGKILL, &sa, NULL));
  CHECK_SYS("sigaction SIGSTOP", sigaction(SIGSTOP, &sa, NULL));
  CHECK_SYS("sigaction SIGKILL query", sigaction(SIGKILL, NULL, &old));
  CHECK_SYS("sigaction 0", sigaction(0, &sa, NULL));
  CHECK_SYS("sigaction 0 query", sigaction(0, NULL, &old));
  CHECK_SYS("sigaction 65", sigaction(65, &sa, NULL));
  CHECK_SYS("sigaction 65 query", sigaction(65, NULL, &old));
  CHECK_SYS("sigaction -1", sigaction(-1, &sa, NULL));
  CHECK_SYS("sigaction 32", sigaction(32, &sa, NULL));
  CHECK_SYS("sigaction 33", sigaction(33, &sa, NULL));
  CHECK_SYS("sigaction 32 query", sigaction(32, NULL, &old));
  CHECK_SYS("sigaction 34 query", sigaction(34, NULL, &old));
  printf("SIGRTMIN %d SIGRTMAX %d\n", SIGRTMIN, SIGRTMAX);
  CHECK_SYS("sigaction SIGUSR1 query", sigaction(SIGUSR1, NULL, &old));
  printf("SIGUSR1 default: %s\n", old.sa_handler == SIG_DFL ? "yes" : "no");
  CHECK_SYS("signal SIGKILL", signal(SIGKILL, SIG_IGN) == SIG_ERR);
  CHECK_SYS("signal 0", signal(0, SIG_IGN) == SIG_ERR);
  CHECK_SYS("signal 65", signal(65, SIG_IGN) == SIG_ERR);
  CHECK_SYS("signal 32", signal(32, SIG_IGN) == SIG_ERR);
  CHECK_SYS("sysv_signal 65", sysv_signal(65, SIG_IGN) == SIG_ERR);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK_SYS("siginterrupt 65", siginterrupt(65, 1));
  CHECK_SYS("siginterrupt 0", siginterrupt(0, 1));
  CHECK_SYS("siginterrupt SIGKILL", siginterrupt(SIGKILL, 1));
  CHECK_SYS("siginterrupt SIGUSR2", siginterrupt(SIGUSR2, 1));
#pragma GCC diagnostic pop

  sigset_t set, o;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  CHECK_SYS("sigprocmask how 99", sigprocmask(99, &set, NULL));
  CHECK_SYS("sigprocmask how 99 no set", sigprocmask(99, NULL, &o));
  CHECK_SYS("sigprocmask how -1 no set", sigprocmask(-1, NULL, &o));
  CHECK_RC("pthread_sigmask how 99", pthread_sigmask(99, &set, NULL));
  CHECK_RC("pthread_sigmask how 99 no set", pthread_sigmask(99, NULL, &o));
  sigset_t all;
  sigfillset(&all);
  CHECK_SYS("sigprocmask block all", sigprocmask(SIG_BLOCK, &all, &o));
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  printf("blocked: SIGKILL %d SIGSTOP %d 32 %d 33 %d 34 %d SIGUSR1 %d\n", sigismember(&now, SIGKILL),
         sigismember(&now, SIGSTOP), sigismember(&now, 32), sigismember(&now, 33), sigismember(&now, 34),
         sigismember(&now, SIGUSR1));
  sigprocmask(SIG_SETMASK, &o, NULL);
  sigset_t raw;
  memset(&raw, 0xff, sizeof raw);
  CHECK_RC("pthread_sigmask block raw all-ones", pthread_sigmask(SIG_SETMASK, &raw, &o));
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("blocked raw: 32 %d 33 %d\n", sigismember(&now, 32), sigismember(&now, 33));
  pthread_sigmask(SIG_SETMASK, &o, NULL);
  CHECK_SYS("sigpending", sigpending(&now));

  /* sigwait family with SIGUSR1 blocked */
  sigprocmask(SIG_BLOCK, &set, &o);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  CHECK_SYS("sigtimedwait bad nsec", sigtimedwait(&set, &si, &kBadNsec));
  CHECK_SYS("sigtimedwait negative sec", sigtimedwait(&set, &si, &kNegSec));
  CHECK_SYS("sigtimedwait zero", sigtimedwait(&set, &si, &kZero));
  CHECK_SYS("sigtimedwait 1 ms", sigtimedwait(&set, &si, &(struct timespec){0, 1000000}));
  sigset_t empty;
  sigemptyset(&empty);
  CHECK_SYS("sigtimedwait empty set zero", sigtimedwait(&empty, &si, &kZero));
  raise(SIGUSR1);
  CHECK_SYS("sigtimedwait pending", sigtimedwait(&set, &si, &kBadNsec));
  printf("got signal %d code %d\n", si.si_signo, si.si_code);
  raise(SIGUSR1);
  int sig = 0;
  CHECK_RC("sigwait pending", sigwait(&set, &sig));
  printf("sigwait got %d\n", sig);
  raise(SIGUSR1);
  CHECK_SYS("sigwaitinfo pending", sigwaitinfo(&set, NULL));
  sigset_t bad;
  sigemptyset(&bad);
  sigaddset(&bad, SIGKILL);
  CHECK_SYS("sigtimedwait SIGKILL zero", sigtimedwait(&bad, &si, &kZero));
  sigprocmask(SIG_SETMASK, &o, NULL);
}

static void futex_checks(void) {
  uint32_t w = 5;
  CHECK_SYS("futex wait wrong value", syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0));
  CHECK_SYS("futex wait bad nsec", syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, 5, &kBadNsec, NULL, 0));
  CHECK_SYS("futex wait negative sec", syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, 5, &kNegSec, NULL, 0));
  CHECK_SYS("futex wait zero timeout", syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE, 5, &kZero, NULL, 0));
  CHECK_SYS("futex wait_bitset bitset 0", syscall(SYS_futex, &w, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0));
  CHECK_SYS("futex wake_bitset bitset 0", syscall(SYS_futex, &w, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0));
  CHECK_SYS("futex wake none", syscall(SYS_futex, &w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
  CHECK_SYS("futex wake 0", syscall(SYS_futex, &w, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0));
  CHECK_SYS("futex bad op", syscall(SYS_futex, &w, 99, 1, NULL, NULL, 0));
  CHECK_SYS("futex unaligned", syscall(SYS_futex, (char*)&w + 1, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
  CHECK_SYS("futex null address wait", syscall(SYS_futex, NULL, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
  CHECK_SYS("futex cmp_requeue value differs", syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, &w, 4));
  CHECK_SYS("futex cmp_requeue negative count", syscall(SYS_futex, &w, FUTEX_CMP_REQUEUE_PRIVATE, -1, 1, &w, 5));
  CHECK_SYS("futex wait realtime flag on plain wait",
            syscall(SYS_futex, &w, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 5, &kZero, NULL, 0));
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  CHECK_SYS("futex wait_bitset monotonic past",
            syscall(SYS_futex, &w, FUTEX_WAIT_BITSET_PRIVATE, 5, &kZero, NULL, FUTEX_BITSET_MATCH_ANY));
  CHECK_SYS("getpid via syscall()", syscall(SYS_getpid) == getpid());
  CHECK_SYS("syscall -1", syscall(-1));
  CHECK_SYS("syscall 100000", syscall(100000));
}

int main(void) {
  mnp_report_shim();
  sleep_checks();
  poll_checks();
  fd_checks();
  socket_checks();
  wait_checks();
  signal_checks();
  futex_checks();
  printf("done\n");
  return 0;
}
