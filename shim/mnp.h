/* shim/mnp.h — the small public API of libmnpthread.so.
 * A program can test for the runtime with dlsym(RTLD_DEFAULT, "mnp_version"). */
#ifndef MNP_H
#define MNP_H
#ifdef __cplusplus
extern "C" {
#endif
/* Version string of the loaded runtime, e.g. "0.1.0". */
const char* mnp_version(void);
/* Number of Ps (processors) the scheduler runs with. */
int mnp_procs(void);
/* Kernel threads (Ms) the runtime has created so far, M0 included. */
int mnp_mcount(void);
#ifdef __cplusplus
}
#endif
#endif
