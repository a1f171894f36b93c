"""The OTLP receiver: gRPC on 4317 and HTTP on 4318, one handler per signal."""
