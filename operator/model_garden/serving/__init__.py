"""Serving: the vLLM launcher, the carbon meter and batch inference of an InferenceDeployment."""
