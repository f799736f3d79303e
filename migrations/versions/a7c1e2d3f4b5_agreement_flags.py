"""Agreement records in use: flags and attachments on agreements, superseded flags, and each
partnership's `agreement_signed_on` turned into a framework agreement its support is paid under.

Revision ID: a7c1e2d3f4b5
Revises: b8d2f3e4a5c6
Create Date: 2026-12-02 06:00:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a7c1e2d3f4b5'
down_revision = 'b8d2f3e4a5c6'
branch_labels = None
depends_on = None

FRAMEWORK_OBJECTIVE = "Framework agreement recorded before agreements were kept one by one"
FLAG_STATES_BEFORE = ('open', 'acknowledged', 'remediated', 'dismissed')
FLAG_STATES_AFTER = (*FLAG_STATES_BEFORE, 'superseded')


def _one_of(column, states):
    return f"{column} IN ({', '.join(repr(state) for state in states)})"


def _exactly_one(*columns):
    return " + ".join(f"CASE WHEN {c} IS NULL THEN 0 ELSE 1 END" for c in columns).join(
        ("(", ") = 1"))


def upgrade():
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_flags_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_flags_agreement_id_agreements'), 'agreements',
                                    ['agreement_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('ck_flags_exactly_one_subject'), type_='check')
        batch_op.create_check_constraint(
            'exactly_one_subject', _exactly_one('interaction_id', 'partnership_id',
                                                'individual_payment_id', 'agreement_id'))
        batch_op.drop_constraint(batch_op.f('ck_flags_flag_state'), type_='check')
        batch_op.create_check_constraint('flag_state', _one_of('state', FLAG_STATES_AFTER))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_attachments_agreement_id'), ['agreement_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_attachments_agreement_id_agreements'),
                                    'agreements', ['agreement_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('ck_attachments_exactly_one_owner'), type_='check')
        batch_op.create_check_constraint(
            'exactly_one_owner', _exactly_one('interaction_id', 'partnership_id', 'agreement_id'))
    framework_agreements()


def framework_agreements():
    """Each partnership's signed agreement date becomes a framework agreement, and the
    partnership's support lines that name no agreement are paid under it."""
    bind = op.get_bind()
    partnerships = sa.table('partnerships', sa.column('id', sa.Integer),
                            sa.column('agreement_signed_on', sa.Date),
                            sa.column('started_on', sa.Date))
    agreements = sa.table(
        'agreements', sa.column('id', sa.Integer), sa.column('partnership_id', sa.Integer),
        sa.column('kind', sa.String), sa.column('objective', sa.Text),
        sa.column('signed_on', sa.Date), sa.column('starts_on', sa.Date),
        sa.column('created_at', sa.DateTime), sa.column('updated_at', sa.DateTime),
        sa.column('version', sa.Integer))
    supports = sa.table('supports', sa.column('partnership_id', sa.Integer),
                        sa.column('agreement_id', sa.Integer))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = bind.execute(
        sa.select(partnerships.c.id, partnerships.c.agreement_signed_on,
                  partnerships.c.started_on)
        .where(partnerships.c.agreement_signed_on.is_not(None)).order_by(partnerships.c.id)
    ).all()
    for row in rows:
        bind.execute(agreements.insert().values(
            partnership_id=row.id, kind='framework', objective=FRAMEWORK_OBJECTIVE,
            signed_on=row.agreement_signed_on, starts_on=row.started_on, created_at=now,
            updated_at=now, version=1))
        agreement_id = bind.scalar(
            sa.select(sa.func.max(agreements.c.id))
            .where(agreements.c.partnership_id == row.id, agreements.c.kind == 'framework'))
        bind.execute(supports.update()
                     .where(supports.c.partnership_id == row.id,
                            supports.c.agreement_id.is_(None))
                     .values(agreement_id=agreement_id))


def downgrade():
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM flags WHERE agreement_id IS NOT NULL"))
    bind.execute(sa.text("UPDATE flags SET state = 'remediated' WHERE state = 'superseded'"))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_attachments_exactly_one_owner'), type_='check')
        batch_op.create_check_constraint(
            'exactly_one_owner', '(interaction_id IS NULL) <> (partnership_id IS NULL)')
        batch_op.drop_constraint(batch_op.f('fk_attachments_agreement_id_agreements'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_attachments_agreement_id'))
        batch_op.drop_column('agreement_id')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_flags_flag_state'), type_='check')
        batch_op.create_check_constraint('flag_state', _one_of('state', FLAG_STATES_BEFORE))
        batch_op.drop_constraint(batch_op.f('ck_flags_exactly_one_subject'), type_='check')
        batch_op.create_check_constraint(
            'exactly_one_subject', _exactly_one('interaction_id', 'partnership_id',
                                                'individual_payment_id'))
        batch_op.drop_constraint(batch_op.f('fk_flags_agreement_id_agreements'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_flags_agreement_id'))
        batch_op.drop_column('agreement_id')
