"""catalogue versions, licence versions, idempotency per route

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:00:00

Hand-written. The catalogue gains the remaining GB/T 36902 fields (service items, issuing level,
validity rule) and a history of every version of an entry; a licence records the catalogue
version it was issued under and links to its previous and next version; an Idempotency-Key is
now remembered per department, route (scope) and key.

On SQLite, adding a column with a foreign key and changing a primary key need a table rebuild:
``op.batch_alter_table`` does it for the licence table, and the idempotency table is rebuilt by
hand (create, copy, drop, rename) so the same steps run on PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# What a version of an entry is (licences.catalogue.definition writes the same keys).
TYPE_FIELDS = (
    'code', 'name', 'name_en', 'authority_code', 'authority_name', 'authority_level',
    'holder_category', 'holder_id_type', 'validity_years', 'field_schema', 'issuer_codes',
    'service_items', 'issuing_level', 'validity_rule',
)
JSON_FIELDS = ('field_schema', 'issuer_codes', 'service_items')


def upgrade() -> None:
    # --- catalogue: GB/T 36902 fields ------------------------------------------------------
    with op.batch_alter_table('licence_type', schema=None) as batch_op:
        batch_op.add_column(sa.Column('service_items', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('issuing_level', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('validity_rule', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE licence_type SET issuing_level = authority_level WHERE issuing_level = ''")
    op.execute(
        "UPDATE licence_type SET validity_rule = CASE WHEN validity_years IS NULL "
        "THEN 'indefinite' ELSE 'fixed' END WHERE validity_rule = ''"
    )

    op.create_table('licence_type_version',
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=21), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.ForeignKeyConstraint(['code'], ['licence_type.code'], ),
    sa.PrimaryKeyConstraint('code', 'version')
    )
    # The entries that exist today become the first recorded version of themselves.
    bind = op.get_bind()
    types = sa.table('licence_type', sa.column('version'), *(
        sa.column(name, sa.JSON) if name in JSON_FIELDS else sa.column(name)
        for name in TYPE_FIELDS
    ))
    history = sa.table('licence_type_version', sa.column('code'), sa.column('version'),
                       sa.column('definition', sa.JSON),
                       sa.column('created_at', sa.DateTime(timezone=True)), sa.column('actor'))
    now = sa.func.current_timestamp()
    for row in bind.execute(sa.select(types)).mappings():
        bind.execute(history.insert().values(
            code=row['code'], version=row['version'],
            definition={name: row[name] for name in TYPE_FIELDS},
            created_at=now, actor='migration:0002',
        ))

    # --- licence: versions and the catalogue version -----------------------------------------
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('type_version', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('previous', sqlmodel.sql.sqltypes.AutoString(length=96),
                                      nullable=True))
        batch_op.add_column(sa.Column('superseded_by',
                                      sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True))
        batch_op.create_foreign_key('fk_licence_previous', 'licence', ['previous'], ['identifier'])
        batch_op.create_foreign_key('fk_licence_superseded_by', 'licence', ['superseded_by'],
                                    ['identifier'])
        batch_op.create_index('ix_licence_issuer_issued', ['issuer_code', 'issued_at',
                                                           'identifier'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_serial'), ['serial'], unique=False)

    # --- idempotency: scoped by route ----------------------------------------------------------
    op.create_table('idempotency_record_0002',
    sa.Column('department_code', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('request_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('identifier', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('department_code', 'scope', 'key', name='pk_idempotency_scoped')
    )
    op.execute(
        "INSERT INTO idempotency_record_0002 "
        "(department_code, scope, key, request_sha256, identifier, created_at) "
        "SELECT department_code, 'issue', key, request_sha256, identifier, created_at "
        "FROM idempotency_record"
    )
    op.drop_table('idempotency_record')
    op.rename_table('idempotency_record_0002', 'idempotency_record')


def downgrade() -> None:
    op.create_table('idempotency_record_0001',
    sa.Column('department_code', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('request_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('identifier', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('department_code', 'key', name='pk_idempotency')
    )
    # Keys of other routes have no place in the old table; issuance keys are kept.
    op.execute(
        "INSERT INTO idempotency_record_0001 "
        "(department_code, key, request_sha256, identifier, created_at) "
        "SELECT department_code, key, request_sha256, identifier, created_at "
        "FROM idempotency_record WHERE scope = 'issue'"
    )
    op.drop_table('idempotency_record')
    op.rename_table('idempotency_record_0001', 'idempotency_record')

    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_serial'))
        batch_op.drop_index('ix_licence_issuer_issued')
        batch_op.drop_constraint('fk_licence_superseded_by', type_='foreignkey')
        batch_op.drop_constraint('fk_licence_previous', type_='foreignkey')
        batch_op.drop_column('superseded_by')
        batch_op.drop_column('previous')
        batch_op.drop_column('type_version')

    op.drop_table('licence_type_version')
    with op.batch_alter_table('licence_type', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('validity_rule')
        batch_op.drop_column('issuing_level')
        batch_op.drop_column('service_items')
