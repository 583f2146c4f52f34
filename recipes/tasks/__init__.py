"""The run loop's tasks: what differs between recipes (``recipes.loop`` does the rest)."""
