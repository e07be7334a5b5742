#!/usr/bin/env bash
# Guile 3.0 (Boehm GC, which stops the world by signalling every thread and
# waits in sigsuspend for the restart signal): 8 threads allocate and bump
# a counter under a mutex, signalling a condition variable main waits on;
# then par-map and futures. Before the evening of 2026-12-06 a restart
# signal that came with the runtime's own was slept through at 1 P and
# Boehm GC aborted ("Signals delivery fails constantly") in most runs.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(guile-3.0) commands=(guile)
what='guile threads + GC stop-the-world, par-map, futures'
prepare() {
  cat >t.scm <<'SCM'
(use-modules (ice-9 threads) (ice-9 futures) (srfi srfi-1))
(define (garbage n)
  (let loop ((i 0) (keep '()))
    (cond ((= i n) (length keep))
          ((zero? (modulo i 500)) (loop (+ i 1) '()))
          (else (loop (+ i 1) (cons (make-vector 6 i) keep))))))
(define lock (make-mutex))
(define changed (make-condition-variable))
(define done 0)
(define workers
  (map (lambda (id)
         (call-with-new-thread
          (lambda ()
            (do ((round 0 (+ round 1))) ((= round 200) id)
              (garbage 1500)
              (with-mutex lock
                (set! done (+ done 1))
                (signal-condition-variable changed))))))
       (iota 8)))
(with-mutex lock
  (let wait () (when (< done 1600) (wait-condition-variable changed lock) (wait))))
(format #t "workers ~a, rounds ~a\n" (apply + (map join-thread workers)) done)
(format #t "par-map ~a\n" (apply + (par-map (lambda (k) (garbage (* 100 k))) (iota 40))))
(format #t "futures ~a\n" (apply + (map touch (map (lambda (k) (future (* k (garbage 2000)))) (iota 16)))))
SCM
}
workload() { mx_exec guile --no-auto-compile ../t.scm; }
mx_main
