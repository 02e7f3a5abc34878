"""Generated protobuf and gRPC code. Never edit: run `python protos/generate.py`."""
