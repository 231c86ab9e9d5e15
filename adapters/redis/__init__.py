"""The Redis shell: the embedded server, the journal, snapshots and event streams."""
