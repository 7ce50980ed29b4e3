"""The API's own listening socket: connections it accepts send small responses at once."""

from __future__ import annotations

import asyncio
import socket

from weatherpipe.api.server import listen_socket


def test_accepted_connections_have_nagle_off() -> None:
    # Without TCP_NODELAY a keep-alive client waits for its delayed ACK (~40 ms) on every
    # response; asyncio turns it on for accepted sockets only when the listener says TCP.
    async def nodelay_of_one_connection() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = listen_socket("127.0.0.1", 0)
        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(seen, timeout=10)
            finally:
                writer.close()

    assert asyncio.run(nodelay_of_one_connection()) != 0
