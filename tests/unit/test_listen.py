"""Listening sockets are bound up front; every failure is one line naming the port or address."""

from __future__ import annotations

import socket

import pytest

from botsys.listen import BindError, bind_sockets, port_of


def close(sockets):
    for sock in sockets:
        sock.close()


def test_port_0_picks_one_port_for_every_address():
    # "" = every interface: 0.0.0.0 and :: where IPv6 exists. Only bound, never listening.
    sockets = bind_sockets("", 0)
    try:
        if len(sockets) < 2:
            pytest.skip("no IPv6 here: one address only")
        assert {s.getsockname()[1] for s in sockets} == {port_of(sockets)} and port_of(sockets)
    finally:
        close(sockets)


def test_a_taken_port_names_the_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BindError) as err:
            bind_sockets("127.0.0.1", port)
    assert str(err.value) == f"port {port} is in use (on 127.0.0.1)"


def test_an_address_not_on_this_machine_is_one_line():
    with pytest.raises(BindError, match=r"^cannot listen on 192\.0\.2\.1:\d+: "):
        bind_sockets("192.0.2.1", 0)  # TEST-NET-1: never a local address


def test_bound_sockets_do_not_accept_until_the_server_listens():
    sockets = bind_sockets("127.0.0.1", 0)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port_of(sockets)), timeout=1)
    finally:
        close(sockets)
