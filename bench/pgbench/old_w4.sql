-- W4: the statement dbapi-runtime rendered before f0f6c8c (e.g. at fb4c35a):
-- one json_build_object per row, LIMIT (and OFFSET) bound as parameters
-- (pgbench :lim / :off). JSON keys and filter values are literals here.
\set lim 25
SELECT coalesce(json_agg(json_build_object('id'::text, "t1"."id", 'total'::text, "t1"."total", 'customers'::text, (SELECT json_build_object('name'::text, "t2"."name") FROM "public"."customers" AS "t2" WHERE "t2"."id" = "t1"."customer_id" LIMIT 1))), '[]'::json)::text, COUNT(*), NULL FROM (SELECT "t1".* FROM "public"."orders" AS "t1" LIMIT :lim) AS "t1";
