#!/usr/bin/env bash
# OpenJDK 17: an ExecutorService of 8 threads runs 400 tasks (SHA-256 of
# generated data, a ConcurrentHashMap, a CountDownLatch) — with the JVM's own
# GC, JIT compiler and signal-dispatch threads; javac compiles it natively.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(default-jdk-headless) commands=(java javac)
what='OpenJDK ExecutorService(8), 400 tasks'
prepare() {
  cat >Mx.java <<'J'
import java.security.MessageDigest;
import java.util.*;
import java.util.concurrent.*;
public class Mx {
  public static void main(String[] a) throws Exception {
    ExecutorService ex = Executors.newFixedThreadPool(8);
    ConcurrentHashMap<Integer, String> m = new ConcurrentHashMap<>();
    CountDownLatch done = new CountDownLatch(400);
    List<Future<Long>> fs = new ArrayList<>();
    for (int i = 0; i < 400; i++) {
      final int k = i;
      fs.add(ex.submit(() -> {
        MessageDigest d = MessageDigest.getInstance("SHA-256");
        byte[] b = new byte[16384];
        for (int j = 0; j < b.length; j++) b[j] = (byte) (j * 31 + k);
        for (int r = 0; r < 8; r++) d.update(b);
        byte[] h = d.digest();
        m.put(k, String.format("%02x%02x", h[0], h[1]));
        done.countDown();
        return (long) (h[0] & 0xff) * k;
      }));
    }
    long s = 0;
    for (Future<Long> f : fs) s += f.get();
    done.await();
    ex.shutdown();
    ex.awaitTermination(60, TimeUnit.SECONDS);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 400; i++) sb.append(m.get(i));
    System.out.println("sum " + s + " map " + m.size() + " hash " + sb.toString().hashCode());
  }
}
J
  javac Mx.java
}
workload() { mx_exec java -Xshare:auto -XX:+UseSerialGC -cp .. Mx; }
mx_main
