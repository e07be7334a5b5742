#!/usr/bin/env bash
# SBCL 2.2 (Steel Bank Common Lisp): 16 threads with a mutex, allocation and
# a full GC (its stop-the-world signals every thread), a lock-free queue
# with 4 consumers, and Lisp errors signalled and handled in threads (a
# trap whose handler checks the signal mask it runs with: SBCL died of
# "blockables unblocked" under the shim before 2026-12-06), and 4 threads
# that allocate enough to stop the world many times (their handlers check
# that SBCL's deferrable signals, SIGURG among them, are all blocked or all
# open in the saved context: "deferrable signals partially blocked" in 7
# of 10 runs before the evening of 2026-12-06). Each SBCL thread enables
# an alternate signal stack, so each is wired.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(sbcl) commands=(sbcl)
what='sbcl threads, GC, queue, errors in threads'
prepare() {
  cat >t.lisp <<'LISP'
(require :sb-concurrency)
(defun fib (n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))
(defvar *lock* (sb-thread:make-mutex))
(defvar *count* 0)
(let ((threads (loop for i below 16 collect
                 (let ((i i)) (sb-thread:make-thread
                   (lambda ()
                     (dotimes (k 2000) (sb-thread:with-mutex (*lock*) (incf *count*)))
                     (let ((l nil)) (dotimes (k 20000) (push (make-array 10) l)) (length l))
                     (fib (+ 20 (mod i 4)))))))))
  (format t "~a~%" (reduce #'+ (mapcar #'sb-thread:join-thread threads))))
(format t "~a~%" *count*)
(sb-ext:gc :full t)
(let* ((q (sb-concurrency:make-queue)) (total 0) (tl (sb-thread:make-mutex))
       (ws (loop repeat 4 collect (sb-thread:make-thread (lambda () (loop for x = (sb-concurrency:dequeue q) until (eq x :done) do (if x (sb-thread:with-mutex (tl) (incf total x)) (sb-thread:thread-yield))))))))
  (dotimes (i 1000) (sb-concurrency:enqueue i q))
  (dotimes (i 4) (sb-concurrency:enqueue :done q))
  (mapc #'sb-thread:join-thread ws) (format t "queue ~a~%" total))
(let* ((ws (loop repeat 4 collect (sb-thread:make-thread (lambda () (handler-case (dotimes (i 1000) (car (the t (if (> i -1) i nil)))) (type-error () :caught)))))))
  (format t "~a~%" (mapcar #'sb-thread:join-thread ws)))
(handler-case (let ((x (list 1 2))) (+ (car x) (cdr x))) (type-error () (format t "main caught~%")))
(let ((ts (loop for i below 8 collect (let ((i i)) (sb-thread:make-thread (lambda () (handler-case (/ 10 (- i i)) (division-by-zero () i))))))))
  (format t "~a~%" (reduce #'+ (mapcar #'sb-thread:join-thread ts))))
(defun churn (n) (let ((acc nil)) (dotimes (i n) (push (make-array 16) acc) (when (zerop (mod i 1000)) (setf acc nil))) (length acc)))
(format t "churn ~a~%" (reduce #'+ (mapcar #'sb-thread:join-thread
  (loop repeat 4 collect (sb-thread:make-thread (lambda () (let ((s 0)) (dotimes (k 100) (incf s (churn 3000))) s)))))))
LISP
}
workload() { mx_exec sbcl --noinform --non-interactive --load ../t.lisp; }
mx_main
