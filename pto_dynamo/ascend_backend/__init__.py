"""pto_dynamo.ascend_backend."""
