"""surgedesk's functional core.

Everything in this package is pure and deterministic: no I/O, no wall clock (time arrives as a
``now_s`` argument), and no import of ray, grpc, redis, msgpack or prometheus. The same code runs
inside the production dispatcher actor and inside the virtual-time simulator.
"""
