"""Typed configuration: YAML files in ``configs/`` validated by pydantic, by section group.

Every tunable value lives in ``configs/salarymodel.yaml`` (settings, loaded by
``config.settings``) or ``configs/sources.yaml`` (adapters, ``config.sources``);
no settings field has a default in code. This package marker imports nothing.
"""
