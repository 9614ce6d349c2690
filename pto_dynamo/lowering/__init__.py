"""pto_dynamo.lowering."""
