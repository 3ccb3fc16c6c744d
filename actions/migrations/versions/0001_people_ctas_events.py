"""People, calls to action, the event log and the run lock.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_users_team_id_teams"),
        sa.ForeignKeyConstraint(["manager_id"], ["users.id"], name="fk_users_manager_id_users"),
    )
    op.create_table(
        "ctas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("cause", sa.String(200), nullable=False),
        sa.Column("play", sa.String(100), nullable=True),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("opened", sa.DateTime(), nullable=False),
        sa.Column("due", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("acknowledged", sa.DateTime(), nullable=True),
        sa.Column("snoozed_until", sa.Date(), nullable=True),
        sa.Column("closed", sa.DateTime(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.Column("absent_runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ctas"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_ctas_owner_id_users"),
    )
    op.create_index("ix_ctas_account_cause", "ctas", ["account_id", "cause"])
    op.create_index("ix_ctas_account_id", "ctas", ["account_id"])
    op.create_index("ix_ctas_owner_id", "ctas", ["owner_id"])
    op.create_index("ix_ctas_status", "ctas", ["status"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cta_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["cta_id"], ["ctas.id"], name="fk_events_cta_id_ctas"),
    )
    op.create_index("ix_events_cta_id", "events", ["cta_id"])
    op.create_index("ix_events_account_id", "events", ["account_id"])
    op.create_table(
        "run_lock",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_run_lock"),
    )


def downgrade() -> None:
    """Drop them."""
    for table in ("run_lock", "events", "ctas", "users", "teams"):
        op.drop_table(table)
