"""The desk: the conversation flows, over whichever shard and dispatcher hosting is in use."""
