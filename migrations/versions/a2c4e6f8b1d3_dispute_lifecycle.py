"""The end of a dispute: a partner's answer may also be upheld (kept by the reporting side, with
its reason) or withdrawn (the partner took the dispute back).

Revision ID: a2c4e6f8b1d3
Revises: f1a3c5e7b9d2
Create Date: 2026-12-03 12:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a2c4e6f8b1d3'
down_revision = 'f1a3c5e7b9d2'
branch_labels = None
depends_on = None

OLD = ('pending', 'confirmed', 'disputed')
NEW = OLD + ('upheld', 'withdrawn')
TABLES = (('supports', 'confirmation_state'), ('interactions', 'interaction_confirmation_state'))


def _state(values, name):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def upgrade():
    for table, enum_name in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('dispute_answer', sa.Text(), nullable=True))
            # The old CHECK is dropped and the new one added (alembic does both for an Enum
            # given its existing type).
            batch_op.alter_column('confirmed_by_partner', existing_type=_state(OLD, enum_name),
                                  type_=_state(NEW, enum_name), existing_nullable=False)


def downgrade():
    for table, enum_name in TABLES:
        op.execute(sa.text(f"UPDATE {table} SET confirmed_by_partner = 'disputed' "
                           "WHERE confirmed_by_partner = 'upheld'"))
        op.execute(sa.text(f"UPDATE {table} SET confirmed_by_partner = 'pending' "
                           "WHERE confirmed_by_partner = 'withdrawn'"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('confirmed_by_partner', existing_type=_state(NEW, enum_name),
                                  type_=_state(OLD, enum_name), existing_nullable=False)
            batch_op.drop_column('dispute_answer')
