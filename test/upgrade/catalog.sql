-- The objects of the installed customer_account, as (side, category, key,
-- value) rows: every member object, every function's definition, rights
-- and comment, every table's columns, constraints, indexes, triggers,
-- policies, options and rights, sequences, types, operators, the dumped
-- configuration and the schema's rights.  Generic: it describes whatever
-- the extension scripts created, so a database updated from 1.0.0 can be
-- compared with a fresh install, whatever the upgrade script adds.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET search_path = pg_catalog;
CREATE TEMP VIEW ext_member AS
    SELECT d.classid, d.objid
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'customer_account';
CREATE TEMP VIEW ext_table AS
    SELECT c.oid, c.relname FROM pg_class c JOIN ext_member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    WHERE c.relkind IN ('r', 'p');

COPY (SELECT :'side', x.* FROM (
    SELECT 'member', pg_describe_object(m.classid, m.objid, 0), ''
    FROM ext_member m
  UNION ALL
    SELECT 'function', p.oid::regprocedure::text,
           CASE WHEN p.prokind = 'a' THEN
               (SELECT format('aggregate sfunc=%s stype=%s final=%s combine=%s serial=%s deserial=%s sortop=%s space=%s',
                              a.aggtransfn, format_type(a.aggtranstype, NULL), a.aggfinalfn, a.aggcombinefn,
                              a.aggserialfn, a.aggdeserialfn, a.aggsortop::regoperator, a.aggtransspace)
                FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
           ELSE pg_get_functiondef(p.oid) END
           || E'\nacl=' || coalesce(p.proacl::text, '(default)')
           || E'\ncomment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p JOIN ext_member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
    SELECT 'table', t.relname,
           format('kind=%s persistence=%s options=%s acl=%s rls=%s/%s comment=%s', c.relkind, c.relpersistence,
                  c.reloptions, c.relacl, c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class'))
    FROM ext_table t JOIN pg_class c ON c.oid = t.oid
  UNION ALL
    SELECT 'column', t.relname || '.' || a.attname,
           format('#%s %s notnull=%s default=%s collation=%s identity=%s generated=%s acl=%s comment=%s',
                  a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), co.collname, a.attidentity, a.attgenerated, a.attacl,
                  col_description(t.oid, a.attnum))
    FROM ext_table t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = t.oid AND ad.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
  UNION ALL
    SELECT 'constraint', t.relname || '.' || k.conname,
           format('%s deferrable=%s deferred=%s validated=%s', pg_get_constraintdef(k.oid), k.condeferrable,
                  k.condeferred, k.convalidated)
    FROM ext_table t JOIN pg_constraint k ON k.conrelid = t.oid
  UNION ALL
    SELECT 'index', i.indexrelid::regclass::text, format('%s valid=%s', pg_get_indexdef(i.indexrelid), i.indisvalid)
    FROM ext_table t JOIN pg_index i ON i.indrelid = t.oid
  UNION ALL
    SELECT 'trigger', t.relname || '.' || g.tgname, format('%s enabled=%s', pg_get_triggerdef(g.oid), g.tgenabled)
    FROM ext_table t JOIN pg_trigger g ON g.tgrelid = t.oid AND NOT g.tgisinternal
  UNION ALL
    SELECT 'policy', t.relname || '.' || p.polname,
           format('cmd=%s permissive=%s roles=%s using=%s check=%s', p.polcmd, p.polpermissive, p.polroles::regrole[],
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM ext_table t JOIN pg_policy p ON p.polrelid = t.oid
  UNION ALL
    SELECT 'sequence', s.seqrelid::regclass::text,
           format('%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s', format_type(s.seqtypid, NULL), s.seqstart,
                  s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN ext_member m ON m.classid = 'pg_class'::regclass AND m.objid = s.seqrelid
  UNION ALL
    SELECT 'type', format_type(ty.oid, NULL),
           format('type=%s len=%s byval=%s align=%s storage=%s in=%s out=%s recv=%s send=%s acl=%s labels=%s comment=%s',
                  ty.typtype, ty.typlen, ty.typbyval, ty.typalign, ty.typstorage, ty.typinput, ty.typoutput,
                  ty.typreceive, ty.typsend, ty.typacl,
                  (SELECT string_agg(en.enumlabel, ',' ORDER BY en.enumsortorder) FROM pg_enum en WHERE en.enumtypid = ty.oid),
                  obj_description(ty.oid, 'pg_type'))
    FROM pg_type ty JOIN ext_member m ON m.classid = 'pg_type'::regclass AND m.objid = ty.oid
  UNION ALL
    SELECT 'operator', o.oid::regoperator::text,
           format('code=%s com=%s neg=%s rest=%s join=%s hashes=%s merges=%s', o.oprcode, o.oprcom::regoperator,
                  o.oprnegate::regoperator, o.oprrest, o.oprjoin, o.oprcanhash, o.oprcanmerge)
    FROM pg_operator o JOIN ext_member m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid
  UNION ALL
    SELECT 'opclass', am.amname || ' ' || oc.opcname,
           format('default=%s type=%s ops=%s procs=%s', oc.opcdefault, format_type(oc.opcintype, NULL),
                  (SELECT string_agg(ao.amopstrategy || ':' || ao.amopopr::regoperator, ',' ORDER BY ao.amopstrategy)
                   FROM pg_amop ao WHERE ao.amopfamily = oc.opcfamily),
                  (SELECT string_agg(ap.amprocnum || ':' || ap.amproc::regprocedure, ',' ORDER BY ap.amprocnum)
                   FROM pg_amproc ap WHERE ap.amprocfamily = oc.opcfamily))
    FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
    JOIN ext_member m ON m.classid = 'pg_opclass'::regclass AND m.objid = oc.oid
  UNION ALL
    SELECT 'extension', 'customer_account',
           format('version=%s schema=%s relocatable=%s config=%s', e.extversion, e.extnamespace::regnamespace,
                  e.extrelocatable,
                  (SELECT string_agg(c.cfg::regclass::text || ' ' || coalesce(c.cond, ''), ', ' ORDER BY c.cfg::regclass::text)
                   FROM unnest(e.extconfig, e.extcondition) AS c(cfg, cond)))
    FROM pg_extension e WHERE e.extname = 'customer_account'
  UNION ALL
    SELECT 'schema', n.nspname, format('acl=%s comment=%s', n.nspacl, obj_description(n.oid, 'pg_namespace'))
    FROM pg_namespace n JOIN pg_extension e ON e.extnamespace = n.oid AND e.extname = 'customer_account'
) x) TO STDOUT;
