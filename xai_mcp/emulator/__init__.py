"""A local xAI-compatible gRPC server: the backend of our tests and of offline tries.

It implements xAI's services on our wire-compatible protos, deterministically, with
configurable job timings and fault injection. Each service module exposes
`add(server, env)`; `server.Emulator` wires them together.
"""
