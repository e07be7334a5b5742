/* tls_lib — a dlopen()ed library with initial-exec TLS (dlopen_tls). */
__attribute__((tls_model("initial-exec"))) __thread int tls_value = 42;
__attribute__((tls_model("initial-exec"))) __thread char tls_buf[64] = "initial";

int get_value(void) { return tls_value; }
void set_value(int v) { tls_value = v; }
const char* get_buf(void) { return tls_buf; }
