"""rtseg's SLURM launcher (``hydra/launcher=slurm``): hydra-submitit-launcher's, with job states
read from ``squeue`` where the cluster has no accounting (``rtseg.tracking.slurm_status``)."""
