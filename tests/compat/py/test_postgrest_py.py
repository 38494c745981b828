"""The compatibility suite through postgrest-py (the client supabase-py uses).

run.sh sets DBAPI_URL and DBAPI_ENGINE and loads
api-runtime/tests/fixtures/<engine>.sql before the runtime starts. Expected
values are worked out by hand from the fixture rows, never taken from a
response. postgrest-py names the schema in every request (Accept-Profile:
public), which every engine must take.
"""

import os
import unittest

from postgrest import SyncPostgrestClient

URL = os.environ["DBAPI_URL"]
ENGINE = os.environ["DBAPI_ENGINE"]


class PostgrestPy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = SyncPostgrestClient(URL)

    def rows(self, query):
        return query.execute().data

    def test_select_filter_order(self):
        rows = self.rows(self.client.from_("orders").select("id").in_("id", [3, 1, 2]).order("id"))
        self.assertEqual(rows, [{"id": 1}, {"id": 2}, {"id": 3}])

    def test_to_many_spread_gives_an_array_per_column(self):
        rows = self.rows(
            self.client.from_("customers")
            .select("id, ...orders(order_ids:id)")
            .in_("id", [1, 6])
            .order("id")
            .order("id", foreign_table="orders")
        )
        self.assertEqual(rows, [{"id": 1, "order_ids": [1, 2, 12]}, {"id": 6, "order_ids": []}])

    def test_aggregates_and_the_embedded_count(self):
        rows = self.rows(self.client.from_("orders").select("status", "count()").eq("customer_id", 3))
        self.assertEqual(sorted((r["status"], r["count"]) for r in rows), [("paid", 1), ("pending", 1), ("shipped", 1)])
        rows = self.rows(self.client.from_("customers").select("id, orders(count)").in_("id", [3, 6]).order("id"))
        self.assertEqual(rows, [{"id": 3, "orders": [{"count": 3}]}, {"id": 6, "orders": [{"count": 0}]}])

    def test_embedding_by_foreign_key_column_and_constraint_name(self):
        rows = self.rows(self.client.from_("products").select("id, category_id(name)").eq("id", 1))
        self.assertEqual(rows, [{"id": 1, "category_id": {"name": "Tools"}}])
        rows = self.rows(self.client.from_("products").select("id, categories!fk_products_category(name)").eq("id", 1))
        self.assertEqual(rows, [{"id": 1, "categories": {"name": "Tools"}}])

    @unittest.skipUnless(ENGINE == "postgres", "computed fields are PostgreSQL functions")
    def test_computed_field(self):
        rows = self.rows(self.client.from_("customers").select("id, order_count").gte("order_count", 3).order("id"))
        self.assertEqual(rows, [{"id": 1, "order_count": 3}, {"id": 3, "order_count": 3}])
        rows = self.rows(self.client.from_("orders").select("id, customers(order_count)").eq("id", 4))
        self.assertEqual(rows, [{"id": 4, "customers": {"order_count": 2}}])

    def test_empty_embed_filters_without_being_output(self):
        rows = self.rows(self.client.from_("customers").select("id, orders!inner()").in_("id", [1, 6]).order("id"))
        self.assertEqual(rows, [{"id": 1}])
        rows = self.rows(self.client.from_("customers").select("id, orders()").is_("orders", "null").in_("id", [1, 6]))
        self.assertEqual(rows, [{"id": 6}])

    def test_json_path_is_named_after_the_last_key(self):
        rows = self.rows(self.client.from_("products").select("id,attrs->sizes->>0").eq("id", 4))
        self.assertEqual(rows, [{"id": 4, "sizes": "S"}])
        rows = self.rows(self.client.from_("products").select("id,attrs->>color").eq("id", 1))
        self.assertEqual(rows, [{"id": 1, "color": "red"}])

    def test_exact_count(self):
        res = self.client.from_("orders").select("id", count="exact").lte("id", 3).execute()
        self.assertEqual(res.count, 3)
        self.assertEqual(len(res.data), 3)


if __name__ == "__main__":
    unittest.main()
