"""Maps source folders to import packages (see pyproject.toml): `services/` is `copyloop`
(services/profile -> copyloop.profile, ...), `clients/python/copyloop_client` is the SDK/CLI."""

from setuptools import find_packages, setup

setup(
    package_dir={"copyloop": "services", "copyloop_client": "clients/python/copyloop_client"},
    packages=["copyloop"]
    + [f"copyloop.{p}" for p in find_packages("services")]
    + ["copyloop_client"]
    + [f"copyloop_client.{p}" for p in find_packages("clients/python/copyloop_client")],
)
