-- W3: the statement dbapi-runtime renders for GET /orders?id=eq.N
-- at 96c1064 (api-runtime/src/sql/read.rs, PostgreSQL dialect, as logged with
-- DBAPI_LOG=sqlx=debug), as a pgbench script. No limit in the URL: api.maxRows (1000) is the LIMIT.
\set id random(1, 1000000)
SELECT coalesce(json_agg(dbapi_row), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1"."id" AS "id", "t1"."customer_id" AS "customer_id", "t1"."status" AS "status", "t1"."total" AS "total", "t1"."created_at" AS "created_at" FROM (SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."id" = :id) LIMIT 1000) AS "t1") AS dbapi_row;
