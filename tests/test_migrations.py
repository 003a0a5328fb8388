"""The migrations build exactly the schema the models describe."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from persistence import Base, create_database_engine
from persistence.migrate import SchemaError, check_schema, import_models


def test_models_and_migrations_agree(engine):
    import_models()
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                       Base.metadata)
    assert differences == []


def test_an_unmigrated_database_is_refused_with_the_fix(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(SchemaError, match="cbt db upgrade"):
        check_schema(engine)
