"""A local GitHub stand-in: REST routes, git smart HTTP and signed webhooks on 127.0.0.1 (start at `standin.py`)."""
