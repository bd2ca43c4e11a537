"""Ships the top-level ``conf/`` inside the wheel as ``rtseg/conf``: one copy of the configs, found
by an installed package from any folder. Everything else is declared in pyproject.toml."""

from setuptools import find_namespace_packages, find_packages, setup

conf_groups = [f"rtseg.conf.{name}" for name in find_namespace_packages("conf")]
# the project's Hydra plugins (the Optuna sweeper): packages inside the ``hydra_plugins``
# namespace package, which Hydra scans for plugins (no __init__.py in src/hydra_plugins/)
hydra_plugins = find_namespace_packages("src", include=["hydra_plugins", "hydra_plugins.*"])
setup(
    packages=[*find_packages("src"), *hydra_plugins, "rtseg.conf", *conf_groups],
    package_dir={"": "src", "rtseg.conf": "conf"},
)
