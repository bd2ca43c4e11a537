"""rtseg's Optuna sweeper for Hydra (``hydra/sweeper=optuna``), on current Optuna (>= 4).

hydra-optuna-sweeper 1.3.0, the newest release, requires ``optuna<3``; this plugin keeps its
interface (``hydra.sweeper.params`` in Hydra's sweep grammar, ``n_trials``, ``n_jobs``,
``sampler``, ``direction``, ``study_name``, ``storage``, ``max_failure_rate``) and adds persistent
storage by default, resumable studies, several workers per study and pruning (issue 35).
Hydra finds it by scanning the ``hydra_plugins`` namespace package.
"""
