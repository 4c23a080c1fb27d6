"""The outside systems, one module each: git (the working copy), the model (OpenAI-compatible), GitHub."""
