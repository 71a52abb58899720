"""drop scheduler_jobs: APScheduler's old job store, unused since the daemon keeps its jobs
in memory

Before the daemon kept its jobs in a MemoryJobStore (docs/window.md says why), APScheduler's
SQLAlchemy job store created a `scheduler_jobs` table in the ledger's database, outside the
migrations. Nothing reads it now; a ledger that has one loses it here, one that never had
it is left as it is.

Revision ID: 0012
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("scheduler_jobs"):
        op.drop_table("scheduler_jobs")


def downgrade() -> None:
    pass        # the table was never the ledger's: APScheduler made it, and would again
