"""The local Discord stand-in: an aiohttp REST + websocket gateway server that the unmodified
discord.py client connects to. See docs/standin.md and `devstack.standin.server`."""

from devstack.standin.interactions import Interaction, Response
from devstack.standin.rest import Fault, RestCall
from devstack.standin.server import StandIn, StandInThread
from devstack.standin.state import Channel, User

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
