#!/usr/bin/env bash
# Perl ithreads: 8 interpreter threads (each a clone of the interpreter)
# share a counter (threads::shared, lock) and pass 5,000 items through a
# Thread::Queue.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(perl) commands=(perl) fast=1
what='perl threads x8 + Thread::Queue 5k'
prepare() {
  cat >t.pl <<'PL'
use strict; use warnings; use threads; use threads::shared; use Thread::Queue;
my $n :shared = 0;
my @t = map { threads->create(sub { my $i = shift; my $s = 0;
  for my $k (1 .. 20000) { $s += ($k * $i) % 97; }
  for (1 .. 500) { lock($n); $n++; } return $s; }, $_) } 1 .. 8;
my @r = map { $_->join } @t;
print "sums @r\ncounter $n\n";
my $q = Thread::Queue->new;
my $c = threads->create(sub { my $s = 0; while (defined(my $x = $q->dequeue)) { $s += $x } $s });
$q->enqueue($_) for 1 .. 5000;
$q->end;
print "queue ", $c->join, "\n";
PL
}
workload() { mx_exec perl ../t.pl; }
mx_main
