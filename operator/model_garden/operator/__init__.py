"""The Model Garden operator: kopf wiring, pure planners, child builders and the one executor."""
