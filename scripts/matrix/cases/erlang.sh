#!/usr/bin/env bash
# Erlang/OTP 25 (beam.smp with its JIT, one scheduler thread per CPU, dirty
# schedulers, async and poll threads): 200 processes computing, a ring of
# 1,000 processes passing a token 100,000 times, 8 writers into one ETS
# table, 2,000 timers and a port program. Every ERTS thread enables an
# alternate signal stack (so each is wired to a kernel thread of its own),
# and the JIT keeps Erlang stacks in %rsp (tests/programs/altstack_rsp.c).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
kind=runtime packages=(erlang-base) commands=(erl erlc)
what='erl: processes, ring, ETS, timers, port'
prepare() {
  cat >mxt.erl <<'ERL'
-module(mxt).
-export([main/0]).
fib(0) -> 0; fib(1) -> 1; fib(N) -> fib(N-1) + fib(N-2).
ring(N, Rounds) ->
  Self = self(),
  First = lists:foldl(fun(_, Next) -> spawn(fun() -> relay(Next) end) end, Self, lists:seq(1, N)),
  First ! {token, 0},
  loop_ring(First, Rounds * N, 0).
relay(Next) -> receive {token, C} -> Next ! {token, C + 1}, relay(Next); stop -> Next ! stop end.
loop_ring(First, Total, C) when C >= Total -> First ! stop, receive stop -> C end;
loop_ring(First, Total, _) -> receive {token, C} -> First ! {token, C + 1}, loop_ring(First, Total, C + 1) end.
main() ->
  Self = self(),
  Pids = [spawn(fun() -> Self ! {self(), fib(22 + (I rem 4))} end) || I <- lists:seq(1, 200)],
  io:format("fib ~p~n", [lists:sum([receive {P, R} -> R end || P <- Pids])]),
  io:format("ring ~p~n", [ring(1000, 100)]),
  T = ets:new(x, [public, {write_concurrency, true}, {read_concurrency, true}]),
  Ws = [spawn(fun() -> [ets:insert(T, {K, K * K}) || K <- lists:seq(J * 20000, J * 20000 + 19999)], Self ! done end) || J <- lists:seq(0, 7)],
  [receive done -> ok end || _ <- Ws],
  io:format("ets ~p ~p~n", [ets:info(T, size), lists:sum([V || {_, V} <- ets:tab2list(T)]) rem 1000003]),
  Ts = [spawn(fun() -> receive after 1 + (I rem 20) -> Self ! {tick, I} end end) || I <- lists:seq(1, 2000)],
  io:format("timers ~p~n", [lists:sum([receive {tick, I} -> I end || _ <- Ts])]),
  io:format("port ~s", [os:cmd("echo port-ok")]),
  io:format("schedulers ~p~n", [erlang:system_info(schedulers) > 0]),
  halt(0).
ERL
  erlc mxt.erl
}
workload() { mx_exec erl -noshell -pa .. -s mxt main; }
mx_main
