/* plain_lib — a library without TLS; dlopen_tls_many loads hundreds of
 * copies of it to pass 256 link maps. */
int plain_value(void) { return 7; }
