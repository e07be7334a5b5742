# scripts/matrix/mcclient.py — memcached text-protocol client for the
# memcached case: THREADS threads, each its own connection, set then get
# N keys of its own and check every reply; prints what it verified.
#   python3 mcclient.py PORT THREADS N
import socket, sys, threading

port, nthreads, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bad = []


def readline(f):
    line = f.readline()
    if not line:
        raise EOFError('connection closed')
    return line


def worker(t):
    s = socket.create_connection(('127.0.0.1', port))
    f = s.makefile('rb')
    for i in range(n):
        key, val = b'k%d.%d' % (t, i), b'v%d' % (t * 1000003 + i * 7) * (1 + i % 13)
        s.sendall(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(val), val))
        if readline(f) != b'STORED\r\n':
            bad.append(key)
    for i in range(n):
        key, val = b'k%d.%d' % (t, i), b'v%d' % (t * 1000003 + i * 7) * (1 + i % 13)
        s.sendall(b'get %s\r\n' % key)
        hdr = readline(f)
        got = f.read(len(val) + 2) if hdr.startswith(b'VALUE') else b''
        if hdr != b'VALUE %s 0 %d\r\n' % (key, len(val)) or got != val + b'\r\n' or readline(f) != b'END\r\n':
            bad.append(key)
    s.close()


ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print('verified %d set+get replies, %d wrong' % (2 * nthreads * n, len(bad)))
sys.exit(1 if bad else 0)
