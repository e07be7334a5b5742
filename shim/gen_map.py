#!/usr/bin/env python3
"""Writes the linker version script of libmnpthread.so from interpose/table.def.

The version node is anonymous: the exported symbols carry no version, so they
bind to a program's versioned references (pthread_create@GLIBC_2.34 and
the older pthread_create@GLIBC_2.2.5 alike)."""
import re
import sys

table, out = sys.argv[1], sys.argv[2]
names = re.findall(r'^MNP_SYM\((\w+),', open(table).read(), re.M)
api = ['mnp_version', 'mnp_procs', 'mnp_mcount']
with open(out, 'w') as f:
    f.write('{\n  global:\n')
    for n in names + api:
        f.write('    %s;\n' % n)
    f.write('  local:\n    *;\n};\n')
