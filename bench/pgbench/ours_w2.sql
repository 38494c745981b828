-- W2: the statement dbapi-runtime renders for GET /orders?status=eq.shipped&total=gte.100&limit=25
-- at 96c1064 (api-runtime/src/sql/read.rs, PostgreSQL dialect, as logged with
-- DBAPI_LOG=sqlx=debug), as a pgbench script. The runtime binds the filter values ($1::text, $2::numeric); they are literals here (pgbench variables are numbers only).
SELECT coalesce(json_agg(dbapi_row), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1"."id" AS "id", "t1"."customer_id" AS "customer_id", "t1"."status" AS "status", "t1"."total" AS "total", "t1"."created_at" AS "created_at" FROM (SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."status" = 'shipped'::text) AND ("t1"."total" >= 100::numeric) LIMIT 25) AS "t1") AS dbapi_row;
