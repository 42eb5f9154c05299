"""The version watch asks whether its subscription socket has unread bytes; that must work for
any descriptor number, since a busy worker's sockets pass 1024 (select() refuses those)."""
from __future__ import annotations

import os
import resource
import socket

import pytest

from app.wishes.version_watch import readable

HIGH = 1500


@pytest.fixture
def high_socket_pair():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH:
        if hard != resource.RLIM_INFINITY and hard <= HIGH:
            pytest.skip(f"cannot open descriptor {HIGH} (hard limit {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH + 1, hard))
    ours, theirs = socket.socketpair()
    os.dup2(ours.fileno(), HIGH)
    high = socket.socket(fileno=HIGH)
    ours.close()
    try:
        yield high, theirs
    finally:
        high.close()
        theirs.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_unread_bytes_are_seen_on_a_descriptor_past_1024(high_socket_pair):
    sock, peer = high_socket_pair
    assert sock.fileno() >= 1024
    assert readable(sock, 0) is False
    peer.sendall(b"+message\r\n")
    assert readable(sock, 0.5) is True
    sock.recv(64)
    assert readable(sock, 0) is False
    peer.close()  # a hang-up counts as something to read: the watch stops trusting numbers
    assert readable(sock, 0.5) is True
