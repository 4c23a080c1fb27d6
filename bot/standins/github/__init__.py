"""A local GitHub stand-in: REST routes, git smart HTTP and signed webhooks on 127.0.0.1."""

from bot.standins.github.hooks import Delivery
from bot.standins.github.standin import GitHubStandin

__all__ = ["Delivery", "GitHubStandin"]
