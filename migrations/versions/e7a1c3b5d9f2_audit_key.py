"""The audit chain keyed: each new event's hash is an HMAC with the instance's audit key
(`key_id` names the key; None for the plain SHA-256 of the events before), and append-only
checkpoints record the chain's head. An existing chain is anchored by an 'upgrade' checkpoint at
its head, signed with the audit key, up to which unkeyed events still verify.

Revision ID: e7a1c3b5d9f2
Revises: e6a1b3c5d7f9
Create Date: 2026-12-05 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7a1c3b5d9f2'
down_revision = 'e6a1b3c5d7f9'
branch_labels = None
depends_on = None


def upgrade():
    from governance.audit import write_checkpoint

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_checkpoints'))
    )
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_checkpoints_seq'), ['seq'], unique=False)
    # The database refuses to change or remove checkpoints, as it does audit events.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON "
                   "audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit events are "
                   "append-only'); END")
        op.execute("CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON "
                   "audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit events are "
                   "append-only'); END")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON "
                   "audit_checkpoints FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()")
        op.execute("CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON "
                   "audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION "
                   "audit_events_append_only()")
    # The events hashed so far (plain SHA-256) are anchored where the keyed chain begins.
    write_checkpoint('upgrade', connection=op.get_bind())


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_change ON audit_checkpoints")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints")
    with op.batch_alter_table('audit_checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_checkpoints_seq'))
    op.drop_table('audit_checkpoints')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('key_id')
