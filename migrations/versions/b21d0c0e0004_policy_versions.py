"""Policy versions kept in the database with their SHA-256 (the shipped file's, and those proposed
in the application), and the patient partners' sign-offs that are their provenance
(governance/rules/versions.py).

Revision ID: b21d0c0e0004
Revises: b21c0c0e0003
Create Date: 2026-12-03 19:18:00.357965

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b21d0c0e0004'
down_revision = 'b21c0c0e0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('policy_versions',
    sa.Column('policy_version', sa.String(length=40), nullable=False),
    sa.Column('origin', sa.Enum('file', 'application', name='policy_origin', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('state', sa.Enum('proposed', 'in_force', 'withdrawn', name='policy_version_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('based_on', sa.String(length=40), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('effective_from', sa.Date(), nullable=True),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('put_in_force_by_id', sa.Integer(), nullable=True),
    sa.Column('put_in_force_at', sa.DateTime(), nullable=True),
    sa.Column('withdrawal_reason', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("state != 'in_force' OR effective_from IS NOT NULL", name=op.f('ck_policy_versions_in_force_has_a_date')),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['users.id'], name=op.f('fk_policy_versions_proposed_by_id_users')),
    sa.ForeignKeyConstraint(['put_in_force_by_id'], ['users.id'], name=op.f('fk_policy_versions_put_in_force_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_versions')),
    sa.UniqueConstraint('policy_version', name=op.f('uq_policy_versions_policy_version'))
    )
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_versions_state'), ['state'], unique=False)

    op.create_table('policy_sign_offs',
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('meaning', sa.Text(), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_policy_sign_offs_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['policy_id'], ['policy_versions.id'], name=op.f('fk_policy_sign_offs_policy_id_policy_versions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_policy_sign_offs_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_sign_offs')),
    sa.UniqueConstraint('policy_id', 'user_id', name='uq_policy_sign_offs_user')
    )
    with op.batch_alter_table('policy_sign_offs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_sign_offs_policy_id'), ['policy_id'], unique=False)



def downgrade():
    with op.batch_alter_table('policy_sign_offs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_sign_offs_policy_id'))

    op.drop_table('policy_sign_offs')
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_versions_state'))

    op.drop_table('policy_versions')
