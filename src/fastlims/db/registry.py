"""Imports every capability's models so ``Base.metadata`` is complete (Alembic, tests)."""

from fastlims.benches import registry as bench_models  # noqa: F401
from fastlims.catalog import models as catalog_models  # noqa: F401
from fastlims.db import locks  # noqa: F401
from fastlims.db.base import Base
from fastlims.intake import models as intake_models  # noqa: F401
from fastlims.messaging import models as messaging_models  # noqa: F401
from fastlims.pipeline import models as pipeline_models  # noqa: F401
from fastlims.requests import models as request_models  # noqa: F401
from fastlims.users import models as user_models  # noqa: F401

metadata = Base.metadata
