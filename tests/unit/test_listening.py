"""The API's listening socket: connections it accepts send each write at once."""

from __future__ import annotations

import asyncio
import socket

from common.listening import listen


def test_accepted_connections_have_nagles_algorithm_off() -> None:
    # Given the socket the API listens on, served by asyncio as uvicorn serves it
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []
    accepted_one = asyncio.Event()

    class Peek(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()
            accepted_one.set()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Peek, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            await accepted_one.wait()
            writer.close()

    # When a client connects
    asyncio.run(asyncio.wait_for(accept_one(), timeout=10))

    # Then the accepted socket has TCP_NODELAY set: a response written as headers, then
    # body, does not wait for the client's delayed acknowledgement of the headers
    assert seen[0] != 0
