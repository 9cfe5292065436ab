"""Design of experiments for a test request: pure functions, data in and data out.

Typical use by the pipeline::

    spec = parse_doe_section(catalog_entry["doe"])
    factors = resolve_factors(parameters_from_model_description, spec, request_overrides)
    result = design(spec, factors, expected_duration_s(profile_timestamps, nominal_s))
    files = {"design.json": design_to_json(result), "runs.csv": design_to_csv(result)}
"""

from fastlims.doe.designs import design
from fastlims.doe.duration import expected_duration_s
from fastlims.doe.errors import DoeError
from fastlims.doe.export import design_from_json, design_to_csv, design_to_json
from fastlims.doe.factors import resolve_factors
from fastlims.doe.models import (
    METHODS,
    Design,
    DesignQuality,
    DoeSpec,
    Factor,
    FactorSpec,
    Method,
    Parameter,
    Run,
)
from fastlims.doe.spec import parse_doe_section

__all__ = [
    "METHODS",
    "Design",
    "DesignQuality",
    "DoeError",
    "DoeSpec",
    "Factor",
    "FactorSpec",
    "Method",
    "Parameter",
    "Run",
    "design",
    "design_from_json",
    "design_to_csv",
    "design_to_json",
    "expected_duration_s",
    "parse_doe_section",
    "resolve_factors",
]
