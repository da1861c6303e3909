"""The multiplexer that serves many delivery connections from one thread, on real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from postroom.errors import ProtocolTimeout
from postroom.services.multiplex import Call, Multiplexer, Steps, Wait, run_inline


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


def echo_rounds(sock: socket.socket, rounds: int, log: list[str], name: str) -> Steps[int]:
    """Write a line, wait for the peer's answer, read it; `rounds` times."""
    for n in range(rounds):
        sock.sendall(f"{name}{n}\n".encode())
        yield Wait(sock, 5.0)
        log.append(sock.recv(100).decode().strip())
    return rounds


def answering_peer(sock: socket.socket, delay_s: float) -> threading.Thread:
    def serve() -> None:
        with sock:
            while data := sock.recv(100):
                time.sleep(delay_s)
                sock.sendall(b"re:" + data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_slow_connection_does_not_hold_up_a_fast_one(pool: ThreadPoolExecutor) -> None:
    slow_client, slow_server = socket.socketpair()
    fast_client, fast_server = socket.socketpair()
    answering_peer(slow_server, 0.3)
    answering_peer(fast_server, 0.0)
    log: list[str] = []
    mux: Multiplexer[int] = Multiplexer(pool)
    mux.add(echo_rounds(slow_client, 1, log, "slow"), "slow")
    mux.add(echo_rounds(fast_client, 20, log, "fast"), "fast")
    assert mux.run(5.0) == [("fast", 20)]  # all twenty before the slow one's single answer
    assert log == [f"re:fast{n}" for n in range(20)]
    assert len(mux) == 1
    assert mux.run(5.0) == [("slow", 1)]
    mux.close()
    for sock in (slow_client, fast_client):
        sock.close()


def test_a_wait_without_answer_throws_a_timeout_into_its_steps(pool: ThreadPoolExecutor) -> None:
    client, server = socket.socketpair()

    def patient() -> Steps[str]:
        try:
            yield Wait(client, 0.2)
        except ProtocolTimeout:
            return "timed out"
        return "answered"

    mux: Multiplexer[str] = Multiplexer(pool)
    mux.add(patient())
    started = time.monotonic()
    assert mux.run(5.0) == [(None, "timed out")]
    assert 0.15 < time.monotonic() - started < 2.0
    mux.close()
    client.close()
    server.close()


def test_calls_run_elsewhere_and_hand_back_results_and_errors(pool: ThreadPoolExecutor) -> None:
    main = threading.get_ident()

    def blocking(fail: bool) -> int:
        assert threading.get_ident() != main
        if fail:
            raise ValueError("refused")
        return 7

    def steps() -> Steps[tuple[int, str]]:
        value = yield Call(blocking, False)
        try:
            yield Call(blocking, True)
        except ValueError as exc:
            return value, str(exc)
        return value, ""

    mux: Multiplexer[tuple[int, str]] = Multiplexer(pool)
    mux.add(steps(), "t")
    assert mux.run(5.0) == [("t", (7, "refused"))]
    mux.close()


def test_a_failing_step_is_reported_and_the_others_go_on(pool: ThreadPoolExecutor) -> None:
    def broken() -> Steps[int]:
        yield Call(time.sleep, 0)
        raise RuntimeError("bug")

    def fine() -> Steps[int]:
        yield Call(time.sleep, 0.05)
        return 1

    mux: Multiplexer[int] = Multiplexer(pool)
    mux.add(broken(), "broken")
    mux.add(fine(), "fine")
    results = dict(mux.run(5.0))
    while len(mux):
        results.update(mux.run(5.0))
    assert isinstance(results["broken"], RuntimeError)
    assert results["fine"] == 1
    mux.close()


def test_close_closes_what_is_still_running(pool: ThreadPoolExecutor) -> None:
    client, server = socket.socketpair()
    closed: list[bool] = []

    def waiting() -> Steps[None]:
        try:
            yield Wait(client, 60.0)
        finally:
            closed.append(True)

    mux: Multiplexer[None] = Multiplexer(pool)
    mux.add(waiting())
    assert mux.run(0.05) == []
    mux.close()
    assert closed == [True]
    client.close()
    server.close()


def test_run_inline_drives_steps_in_this_thread() -> None:
    client, server = socket.socketpair()
    answering_peer(server, 0.0)
    log: list[str] = []
    assert run_inline(echo_rounds(client, 3, log, "x")) == 3
    assert log == ["re:x0", "re:x1", "re:x2"]
    assert run_inline(_call_then_fail()) == "caught refused"
    client.close()


def _call_then_fail() -> Steps[str]:
    try:
        yield Call(_refuse)
    except ValueError as exc:
        return f"caught {exc}"
    return "not raised"


def _refuse() -> None:
    raise ValueError("refused")
