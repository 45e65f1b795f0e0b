"""`python -m config.server ARGS`: Daphne (same arguments as `python -m daphne`) with a websocket size limit.

Daphne has no option for the largest websocket message it accepts, and Autobahn's default is unlimited:
a client could make the server buffer any amount before the consumer sees a byte. Here the factory gets
maxMessagePayloadSize / maxFramePayloadSize = WEBSOCKET_MAX_MESSAGE_BYTES, so that a larger message
closes the socket with 1009 (message too big) while it arrives. Autobahn applies the same limit to what the
server sends; the limit is on clients, so the server's own messages (a long consultation's state) are exempt.
"""
from __future__ import annotations

import os

from django.conf import settings

# daphne.server installs Twisted's asyncio reactor on import: it must come before anything else Twisted.
from daphne import server as daphne_server  # isort:skip


def websocket_max_message_bytes() -> int:
    return int(settings.WEBSOCKET_MAX_MESSAGE_BYTES)


class IncomingLimitedWebSocketProtocol(daphne_server.WebSocketFactory.protocol):
    def sendMessage(self, *args, **kwargs):  # noqa: N802 (Autobahn's name)
        # Autobahn checks maxMessagePayloadSize on outgoing messages too: lift it for the server's own sends.
        limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
        try:
            return super().sendMessage(*args, **kwargs)
        finally:
            self.maxMessagePayloadSize = limit


class LimitedWebSocketFactory(daphne_server.WebSocketFactory):
    protocol = IncomingLimitedWebSocketProtocol

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (Autobahn's name)
        limit = websocket_max_message_bytes()
        options.setdefault("maxMessagePayloadSize", limit)
        options.setdefault("maxFramePayloadSize", limit)
        super().setProtocolOptions(**options)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    daphne_server.WebSocketFactory = LimitedWebSocketFactory
    # After the factory is replaced, so that nothing Daphne builds can have bound the unlimited one.
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
