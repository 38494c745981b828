// Resource embedding through foreign keys: many-to-one, one-to-many,
// many-to-many through a junction, hints, !inner, filters/order/limit inside
// embedded resources, composite keys.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, ids, fails, utc } from './helpers.mjs';

const ITEMS = { referencedTable: 'order_items' };

describe('embedding', () => {
  test('by foreign-key column and by constraint name, as PostgREST resolves them', async () => {
    const byColumn = ok(await db.from('products').select('id, category_id(name)').eq('id', 1));
    assert.deepEqual(byColumn, [{ id: 1, category_id: { name: 'Tools' } }]);
    const byConstraint = ok(await db.from('products').select('id, fk_products_category(name)').eq('id', 1));
    assert.deepEqual(byConstraint, [{ id: 1, fk_products_category: { name: 'Tools' } }]);
    const hinted = ok(await db.from('products').select('id, categories!fk_products_category(name)').eq('id', 1));
    assert.deepEqual(hinted, [{ id: 1, categories: { name: 'Tools' } }]);
  });

  test('many-to-one (orders -> customers), renamed', async () => {
    const rows = ok(
      await db.from('orders').select('id, customer:customers(id,name)').in('id', [1, 4, 10]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, customer: { id: 1, name: 'Alice Anderson' } },
      { id: 4, customer: { id: 2, name: 'bob brown' } },
      { id: 10, customer: { id: 5, name: 'Eve "Evie" Park' } },
    ]);
  });

  test("'*' with an embedded '*'", async () => {
    const [row] = ok(await db.from('orders').select('*, customers(*)').eq('id', 3));
    assert.deepEqual(
      {
        ...row,
        created_at: utc(row.created_at),
        customers: { ...row.customers, created_at: utc(row.customers.created_at) },
      },
      {
        id: 3,
        customer_id: 2,
        status: 'pending',
        total: 9.99,
        note: null,
        created_at: '2024-03-05T09:15:00.000Z',
        customers: {
          id: 2,
          name: 'bob brown',
          email: 'bob.brown@example.com',
          city: null,
          created_at: '2024-01-06T10:30:00.000Z',
        },
      },
    );
  });

  test('spread of a to-one embed (...customers(name))', async () => {
    const rows = ok(
      await db.from('orders').select('id, ...customers(customer_name:name, city)').in('id', [1, 3]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, customer_name: 'Alice Anderson', city: 'New York' },
      { id: 3, customer_name: 'bob brown', city: null },
    ]);
  });

  test('spread of a to-many embed: an array per column, in the embed order', async () => {
    const rows = ok(
      await db
        .from('customers')
        .select('id, ...orders(order_ids:id)')
        .in('id', [1, 6])
        .order('id')
        .order('id', { referencedTable: 'orders' }),
    );
    assert.deepEqual(rows, [
      { id: 1, order_ids: [1, 2, 12] },
      { id: 6, order_ids: [] },
    ]);
  });

  test('an empty embed filters without being output', async () => {
    const inner = ok(await db.from('customers').select('id, orders!inner()').in('id', [1, 6]).order('id'));
    assert.deepEqual(inner, [{ id: 1 }]);
    const none = ok(await db.from('customers').select('id, orders()').is('orders', null).in('id', [1, 6]));
    assert.deepEqual(none, [{ id: 6 }]);
  });

  test('many-to-one with a NULL foreign key gives null', async () => {
    const rows = ok(await db.from('products').select('id, categories(name)').in('id', [1, 8]).order('id'));
    assert.deepEqual(rows, [
      { id: 1, categories: { name: 'Tools' } },
      { id: 8, categories: null },
    ]);
  });

  test('one-to-many (customers -> orders), ordered inside, empty array when none', async () => {
    const rows = ok(
      await db
        .from('customers')
        .select('id, orders(id,status)')
        .in('id', [1, 6])
        .order('id')
        .order('id', { referencedTable: 'orders' }),
    );
    assert.deepEqual(rows, [
      {
        id: 1,
        orders: [
          { id: 1, status: 'paid' },
          { id: 2, status: 'shipped' },
          { id: 12, status: 'pending' },
        ],
      },
      { id: 6, orders: [] },
    ]);
  });

  test('many-to-many through the junction (orders <-> products via order_items)', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, products(id,name)')
        .in('id', [1, 7, 8])
        .order('id')
        .order('id', { referencedTable: 'products' }),
    );
    assert.deepEqual(rows, [
      {
        id: 1,
        products: [
          { id: 1, name: 'Widget' },
          { id: 2, name: 'Gadget (Large)' },
          { id: 4, name: '100% Cotton Tee' },
        ],
      },
      { id: 7, products: [] }, // order 7 has no items
      {
        id: 8,
        products: [
          { id: 1, name: 'Widget' },
          { id: 3, name: 'Gizmo, Deluxe' },
        ],
      },
    ]);
  });

  test('many-to-many the other way (products -> orders)', async () => {
    const rows = ok(
      await db
        .from('products')
        .select('id, orders(id)')
        .in('id', [6, 8])
        .order('id')
        .order('id', { referencedTable: 'orders' }),
    );
    assert.deepEqual(rows, [
      { id: 6, orders: [{ id: 5 }, { id: 9 }, { id: 12 }] },
      { id: 8, orders: [] }, // product 8 is in no order
    ]);
  });

  test('nested: orders -> order_items -> products', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(qty, products(name))')
        .eq('id', 1)
        .order('product_id', ITEMS),
    );
    assert.deepEqual(rows, [
      {
        id: 1,
        order_items: [
          { qty: 2, products: { name: 'Widget' } },
          { qty: 1, products: { name: 'Gadget (Large)' } },
          { qty: 3, products: { name: '100% Cotton Tee' } },
        ],
      },
    ]);
  });

  test('two foreign keys to one table: no hint is ambiguous (300, PGRST201)', async () => {
    const res = await db.from('shipments').select('id, addresses(id)');
    fails(res, 300, { code: 'PGRST201' });
    // PostgREST lists the candidates as objects and names the hints.
    const relationships = res.error.details.map((d) => d.relationship).join('\n');
    assert.match(relationships, /fk_shipments_from using/);
    assert.match(relationships, /fk_shipments_to using/);
    assert.match(res.error.hint, /'addresses!fk_shipments_from'/);
  });

  test('!fk_shipments_from / !fk_shipments_to hints disambiguate', async () => {
    const rows = ok(
      await db
        .from('shipments')
        .select('id, from:addresses!fk_shipments_from(id,line), to:addresses!fk_shipments_to(id,line)')
        .order('id'),
    );
    const dock = { id: 1, line: 'Warehouse Dock 1, 1 Industrial Way' };
    const mainSt = { id: 2, line: '12 Main St, New York' };
    assert.deepEqual(rows, [
      { id: 1, from: dock, to: mainSt },
      { id: 2, from: dock, to: { id: 4, line: '8 Rue de Rivoli, Paris' } },
      { id: 3, from: dock, to: { id: 5, line: '77 Broadway, new york' } },
      { id: 4, from: { id: 3, line: '500 Fifth Ave, Apt 4B, New York' }, to: mainSt },
    ]);
  });

  test('a column hint (!from_address_id) disambiguates too', async () => {
    const rows = ok(await db.from('shipments').select('id, addresses!from_address_id(id)').order('id'));
    assert.deepEqual(rows, [
      { id: 1, addresses: { id: 1 } },
      { id: 2, addresses: { id: 1 } },
      { id: 3, addresses: { id: 1 } },
      { id: 4, addresses: { id: 3 } },
    ]);
  });

  test('hints on the one-to-many side (addresses -> shipments)', async () => {
    const rows = ok(
      await db
        .from('addresses')
        .select('id, sent:shipments!fk_shipments_from(id), received:shipments!fk_shipments_to(id)')
        .in('id', [1, 2])
        .order('id')
        .order('id', { referencedTable: 'sent' })
        .order('id', { referencedTable: 'received' }),
    );
    assert.deepEqual(rows, [
      { id: 1, sent: [{ id: 1 }, { id: 2 }, { id: 3 }], received: [] },
      { id: 2, sent: [], received: [{ id: 1 }, { id: 4 }] },
    ]);
  });

  test('a filter on a many-to-one embed without !inner keeps every parent', async () => {
    const rows = ok(
      await db.from('orders').select('id, customers(city)').eq('customers.city', 'Paris').in('id', [1, 5]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, customers: null },
      { id: 5, customers: { city: 'Paris' } },
    ]);
  });

  test('!inner: a filter on the embedded table filters the parents', async () => {
    const rows = ok(
      await db.from('orders').select('id, customers!inner(city)').eq('customers.city', 'Paris').order('id'),
    );
    assert.deepEqual(rows, [
      { id: 5, customers: { city: 'Paris' } },
      { id: 6, customers: { city: 'Paris' } },
      { id: 7, customers: { city: 'Paris' } },
    ]);
  });

  test('!inner on one-to-many: parents with a matching child, children filtered', async () => {
    const rows = ok(
      await db
        .from('customers')
        .select('id, orders!inner(id,status)')
        .eq('orders.status', 'cancelled')
        .order('id'),
    );
    assert.deepEqual(rows, [
      { id: 2, orders: [{ id: 4, status: 'cancelled' }] },
      { id: 5, orders: [{ id: 10, status: 'cancelled' }] },
    ]);
  });

  test('!inner with count=exact counts the filtered parents', async () => {
    const res = await db
      .from('orders')
      .select('id, customers!inner(name)', { count: 'exact' })
      .ilike('customers.name', '*an*')
      .order('id');
    // names containing "an" in any case: Alice Anderson (1), Dan O'Neil (4),
    // Zoë Zhang (6, no orders)
    assert.deepEqual(ids(ok(res)), [1, 2, 8, 9, 12]);
    assert.equal(res.count, 5);
  });

  test('is null on an embedded resource: parents without children', async () => {
    const rows = ok(await db.from('customers').select('id, orders(id)').is('orders', null));
    assert.deepEqual(rows, [{ id: 6, orders: [] }]);
  });

  test('not.is.null on an embedded resource acts like !inner', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(product_id)')
        .eq('order_items.product_id', 9)
        .not('order_items', 'is', null)
        .order('id'),
    );
    assert.deepEqual(rows, [
      { id: 6, order_items: [{ product_id: 9 }] },
      { id: 9, order_items: [{ product_id: 9 }] },
    ]);
  });

  test('a filter inside an embed filters the children only', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(product_id,qty)')
        .in('id', [1, 7, 8])
        .gte('order_items.qty', 3)
        .order('id')
        .order('product_id', ITEMS),
    );
    assert.deepEqual(rows, [
      { id: 1, order_items: [{ product_id: 4, qty: 3 }] },
      { id: 7, order_items: [] },
      {
        id: 8,
        order_items: [
          { product_id: 1, qty: 10 },
          { product_id: 3, qty: 5 },
        ],
      },
    ]);
  });

  test('or() inside an embed (referencedTable)', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(product_id,qty)')
        .in('id', [1, 8])
        .or('qty.eq.1,qty.eq.10', ITEMS)
        .order('id')
        .order('product_id', ITEMS),
    );
    assert.deepEqual(rows, [
      { id: 1, order_items: [{ product_id: 2, qty: 1 }] },
      { id: 8, order_items: [{ product_id: 1, qty: 10 }] },
    ]);
  });

  test('order and limit inside an embed (referencedTable and the deprecated foreignTable)', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(product_id,qty)')
        .in('id', [1, 8])
        .order('id')
        .order('qty', { ascending: false, foreignTable: 'order_items' })
        .limit(2, ITEMS),
    );
    assert.deepEqual(rows, [
      {
        id: 1,
        order_items: [
          { product_id: 4, qty: 3 },
          { product_id: 1, qty: 2 },
        ],
      },
      {
        id: 8,
        order_items: [
          { product_id: 1, qty: 10 },
          { product_id: 3, qty: 5 },
        ],
      },
    ]);
  });

  test('range() inside an embed', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, order_items(product_id)')
        .in('id', [1, 8])
        .order('id')
        .order('product_id', ITEMS)
        .range(1, 1, ITEMS),
    );
    assert.deepEqual(rows, [
      { id: 1, order_items: [{ product_id: 2 }] },
      { id: 8, order_items: [{ product_id: 3 }] },
    ]);
  });

  test('a composite foreign key (stock -> warehouses on region, code) both ways', async () => {
    const stock = ok(await db.from('stock').select('id, qty, warehouses(name)').order('id').limit(4));
    assert.deepEqual(stock, [
      { id: 1, qty: 40, warehouses: { name: 'Berlin Hub' } },
      { id: 2, qty: 120, warehouses: { name: 'Newark DC' } },
      { id: 3, qty: 0, warehouses: { name: 'Reno DC' } },
      { id: 4, qty: -2, warehouses: { name: 'Lyon Depot' } },
    ]);
    const wh = ok(
      await db
        .from('warehouses')
        .select('region, code, stock(id)')
        .order('region')
        .order('code')
        .order('id', { referencedTable: 'stock' }),
    );
    assert.deepEqual(wh, [
      { region: 'eu', code: 1, stock: [{ id: 1 }, { id: 6 }] },
      { region: 'eu', code: 2, stock: [{ id: 4 }] },
      { region: 'us', code: 1, stock: [{ id: 2 }, { id: 5 }] },
      { region: 'us', code: 2, stock: [{ id: 3 }, { id: 7 }] },
    ]);
  });

  test('an unknown relationship is a 400 with code PGRST200', async () => {
    const res = await db.from('orders').select('id, nope(id)');
    fails(res, 400, { code: 'PGRST200', message: 'nope' });
  });

  test('an unknown column inside an embed is a 400 with code 42703', async () => {
    const res = await db.from('orders').select('id, customers(nope)');
    fails(res, 400, { code: '42703', message: 'nope' });
  });
});
