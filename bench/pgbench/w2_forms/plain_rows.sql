-- W2 plain: the page as rows, no JSON (what the shared pgbench W2 measures).
SELECT "t1".* FROM "public"."orders" AS "t1" WHERE ("t1"."status" = 'shipped'::text) AND ("t1"."total" >= 100::numeric) LIMIT 25;
