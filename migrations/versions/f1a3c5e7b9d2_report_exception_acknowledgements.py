"""The gate before a report's signature: acknowledgements of its exceptions, each with a
reason, who and when (never deleted: withdrawing one voids it).

Revision ID: f1a3c5e7b9d2
Revises: f1a2b3c4d5e6
Create Date: 2026-12-02 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1a3c5e7b9d2'
down_revision = 'f1a2b3c4d5e6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_exception_acknowledgements',
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_report_exception_acknowledgements_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_report_exception_acknowledgements_report_id_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_exception_acknowledgements'))
    )
    with op.batch_alter_table('report_exception_acknowledgements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_exception_acknowledgements_report_id'), ['report_id'], unique=False)
        batch_op.create_index('uq_report_exception_acknowledgements_live', ['report_id', 'key'], unique=True, sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))


def downgrade():
    with op.batch_alter_table('report_exception_acknowledgements', schema=None) as batch_op:
        batch_op.drop_index('uq_report_exception_acknowledgements_live', sqlite_where=sa.text('voided_at IS NULL'), postgresql_where=sa.text('voided_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_report_exception_acknowledgements_report_id'))
    op.drop_table('report_exception_acknowledgements')
