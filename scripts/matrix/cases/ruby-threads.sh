#!/usr/bin/env bash
# Ruby 3.1 threads: 16 Threads (each a pthread, the GVL handed between them)
# with a Mutex-protected counter, a Queue between a producer and 4 consumers,
# and a ConditionVariable barrier.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(ruby) commands=(ruby)
what='ruby Thread x16, Queue, ConditionVariable'
prepare() {
  cat >t.rb <<'RB'

m = Mutex.new; n = 0
ts = 16.times.map { |i| Thread.new { s = 0; 20000.times { |k| s += (k * i) % 97 }; 200.times { m.synchronize { n += 1 } }; s } }
puts "sums #{ts.map(&:value).join(' ')}"
puts "counter #{n}"
q = Queue.new
cs = 4.times.map { Thread.new { s = 0; while (x = q.pop) != :done; s += x; end; s } }
(1..8000).each { |x| q << x }
4.times { q << :done }
puts "queue #{cs.map(&:value).sum}"
cv = ConditionVariable.new; ready = 0; go = false
ws = 8.times.map { Thread.new { m.synchronize { ready += 1; cv.wait(m) until go }; ('x' * 1000).sum.to_s } }
Thread.pass until m.synchronize { ready } == 8
m.synchronize { go = true; cv.broadcast }
puts "cv #{ws.map(&:value).uniq.join(' ')}"
RB
}
workload() { mx_exec ruby ../t.rb; }
mx_main
