"""Remote storage for pods: ``s3://`` objects and ``hf://`` Hub snapshots, fetched into the pod's
cache before a run and (for s3) published after it, plus artifact retention.

Why in the pods and not the operator: the operator reads no Secrets (least privilege), so only a
pod that was given the storage Secret as env can reach a bucket. Local paths (``pvc://`` mounts,
``file://``) pass through every function here unchanged.
"""
