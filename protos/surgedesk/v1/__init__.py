"""The code generated from the public gRPC contract, package ``surgedesk.v1``.

``*_pb2.py`` (messages), ``*_pb2.pyi`` (their types) and ``*_pb2_grpc.py`` (stubs and servicers)
are made by ``python protos/generate.py`` from the ``.proto`` files beside them and never edited
by hand. The contract is described for its readers in ``docs/API.md``.
"""
