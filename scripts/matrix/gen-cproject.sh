# scripts/matrix/gen-cproject.sh — sourced by the build-tool cases: writes a
# small C project (N units of generated code, a program that prints a
# checksum of what they compute) into the current directory.
#   mx_gen_cproject N
mx_gen_cproject() {
  local n=$1 i
  mkdir -p src
  for ((i = 0; i < n; i++)); do
    cat >"src/u$i.c" <<C
#include <stdint.h>
static uint64_t mix$i(uint64_t x) { x ^= x >> 31; x *= 0x9e3779b97f4a7c15ull + $i; return x ^ (x >> 29); }
uint64_t unit$i(uint64_t n) {
  uint64_t s = $i;
  for (uint64_t k = 0; k < n; k++) s += mix$i(k * $((i + 3)));
  return s;
}
C
  done
  {
    echo '#include <stdint.h>'
    echo '#include <stdio.h>'
    for ((i = 0; i < n; i++)); do echo "uint64_t unit$i(uint64_t);"; done
    echo 'int main(void) { uint64_t s = 0;'
    for ((i = 0; i < n; i++)); do echo "  s ^= unit$i(1000 + $i);"; done
    echo '  printf("%llu\n", (unsigned long long)s); return 0; }'
  } >src/main.c
}
