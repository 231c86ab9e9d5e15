"""The Ray shell: shard hosts, the dispatcher host, and the gateway's batching clients."""
