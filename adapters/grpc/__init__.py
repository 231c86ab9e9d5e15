"""The gRPC shell: the public services of ``surgedesk.v1``, auth and error mapping."""
