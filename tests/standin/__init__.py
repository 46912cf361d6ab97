"""The local Discord stand-in: an aiohttp REST + websocket gateway server that the unmodified
discord.py client connects to. See docs/standin.md and `tests.standin.server`."""

from tests.standin.interactions import Interaction, Response
from tests.standin.rest import Fault, RestCall
from tests.standin.server import StandIn, StandInThread
from tests.standin.state import Channel, User

__all__ = [
    "Channel",
    "Fault",
    "Interaction",
    "Response",
    "RestCall",
    "StandIn",
    "StandInThread",
    "User",
]
