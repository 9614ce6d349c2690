"""pto_dynamo.graph."""
