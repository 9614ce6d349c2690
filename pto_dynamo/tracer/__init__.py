"""pto_dynamo.tracer."""
