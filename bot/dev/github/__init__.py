"""A local GitHub stand-in: REST routes, git smart HTTP and signed webhooks on 127.0.0.1."""

from bot.dev.github.hooks import Delivery
from bot.dev.github.standin import GitHubStandin

__all__ = ["Delivery", "GitHubStandin"]
