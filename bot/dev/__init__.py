"""Development stand-ins (GitHub, an OpenAI-compatible model server) and the offline playground."""
