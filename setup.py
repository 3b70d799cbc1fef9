"""Maps the `services/` folder to the `copyloop` import package (see pyproject.toml)."""

from setuptools import find_packages, setup

setup(packages=["copyloop"] + [f"copyloop.{p}" for p in find_packages("services")])
