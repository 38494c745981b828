// Vertical filtering: columns, renaming, casts, JSON paths, quoted names,
// column types as JSON, views.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { db, ok, ids, utc, PG, SQLITE } from './helpers.mjs';

describe('select', () => {
  test('select() with no argument returns every column', async () => {
    const rows = ok(await db.from('customers').select().eq('id', 1));
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.deepEqual(Object.keys(row).sort(), ['city', 'created_at', 'email', 'id', 'name']);
    assert.deepEqual(
      { ...row, created_at: utc(row.created_at) },
      {
        id: 1,
        name: 'Alice Anderson',
        email: 'alice@example.com',
        city: 'New York',
        created_at: '2024-01-05T09:00:00.000Z',
      },
    );
  });

  test('a column list with renaming (whitespace is stripped by the client)', async () => {
    const rows = ok(
      await db.from('customers').select('id, full_name:name,  town:city').in('id', [2, 3]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 2, full_name: 'bob brown', town: null },
      { id: 3, full_name: 'Chloé Dubois', town: 'Paris' },
    ]);
  });

  test('casts ::text', async () => {
    const rows = ok(
      await db
        .from('orders')
        .select('id, id_text:id::text, total, total_text:total::text, status::text')
        .in('id', [1, 7, 10])
        .order('id'),
    );
    assert.deepEqual(ids(rows), [1, 7, 10]);
    assert.deepEqual(
      rows.map((r) => r.id_text),
      ['1', '7', '10'],
    );
    assert.deepEqual(
      rows.map((r) => r.total),
      [120.5, 0, -12.5],
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['paid', 'pending', 'cancelled'],
    );
    for (const r of rows) assert.equal(typeof r.total_text, 'string');
    if (SQLITE) {
      // SQLite's NUMERIC affinity stores 120.50 as REAL 120.5 and 0.00 as
      // INTEGER 0 (see the fixture header): the text of the stored value has
      // no trailing zeros, so compare the numbers it spells.
      assert.deepEqual(
        rows.map((r) => Number(r.total_text)),
        [120.5, 0, -12.5],
      );
    } else {
      assert.deepEqual(
        rows.map((r) => r.total_text),
        ['120.50', '0.00', '-12.50'],
      );
    }
  });

  test('cast ::int of a decimal rounds like PostgreSQL (9.99 -> 10, 24.50 -> 25)', async () => {
    const rows = ok(
      await db.from('products').select('id, p:price::int').in('id', [1, 2, 3, 7, 8]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, p: 10 },
      { id: 2, p: 25 },
      { id: 3, p: 199 },
      { id: 7, p: null },
      { id: 8, p: -5 },
    ]);
  });

  test('quoted and reserved column names ("first name", select, group, order)', async () => {
    const rows = ok(
      await db.from('user').select('id,"first name",select,group,order').order('order', { ascending: false }),
    );
    assert.deepEqual(rows, [
      { id: 2, 'first name': 'Grace', select: 'no', group: 'staff', order: 20 },
      { id: 1, 'first name': 'Ada', select: 'yes', group: 'admin', order: 10 },
      { id: 3, 'first name': 'Linus', select: null, group: 'staff', order: 5 },
    ]);
  });

  test('a mixed-case table and columns', async () => {
    const rows = ok(await db.from('MixedCase').select('Id,DisplayName,lowerCol').order('Id'));
    assert.deepEqual(rows, [
      { Id: 1, DisplayName: 'First Item', lowerCol: 'a' },
      { Id: 2, DisplayName: 'second ITEM', lowerCol: 'B' },
      { Id: 3, DisplayName: 'Third, item', lowerCol: null },
    ]);
  });

  test('column types come out as JSON: arrays, objects, booleans, numbers, bytes, uuid', async () => {
    const rows = ok(
      await db
        .from('products')
        .select('id,name,price,tags,attrs,sku,image,in_stock,ratings,category_id')
        .in('id', [2, 7])
        .order('id'),
    );
    // attrs key order is not compared: jsonb reorders keys, the other
    // engines keep them as written; deepEqual ignores key order.
    assert.deepEqual(rows, [
      {
        id: 2,
        name: 'Gadget (Large)',
        price: 24.5,
        tags: ['tools', 'electronics'],
        attrs: { color: 'blue', size: 'L', dims: { w: 10, h: 20 } },
        sku: '6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f',
        image: '\\x89504e470d0a1a0a',
        in_stock: true,
        ratings: [3, 5],
        category_id: 3,
      },
      {
        id: 7,
        name: 'Crème Brûlée Torch',
        price: null,
        tags: ['kitchen'],
        attrs: { fuel: 'butane' },
        sku: 'f7b3d4e5-8a6c-4dbe-af20-3b4c5d6e7f80',
        image: null,
        in_stock: false,
        ratings: null,
        category_id: 5,
      },
    ]);
  });

  test('unicode and quote characters survive', async () => {
    const rows = ok(await db.from('products').select('id,name').in('id', [6, 9]).order('id'));
    assert.deepEqual(rows, [
      { id: 6, name: 'O\'Brien\'s "Best" Tea' },
      { id: 9, name: '東京 Tote' },
    ]);
    const [order] = ok(await db.from('orders').select('note').eq('id', 12));
    assert.equal(order.note, 'Ünïcödé note ✓');
  });

  test('interval text (shipments.transit_time)', async () => {
    const rows = ok(await db.from('shipments').select('id,transit_time').order('id'));
    // PostgreSQL prints the interval; the other fixtures store that text.
    assert.deepEqual(rows, [
      { id: 1, transit_time: '2 days 04:00:00' },
      { id: 2, transit_time: '5 days' },
      { id: 3, transit_time: null },
      { id: 4, transit_time: '03:30:00' },
    ]);
  });

  test('JSON paths: -> keeps JSON, ->> gives text, array indexes', async () => {
    const rows = ok(
      await db
        .from('products')
        .select(
          'id, color:attrs->>color, c:attrs->color, w:attrs->dims->w, ws:attrs->dims->>w, first_size:attrs->sizes->0, weight:attrs->>weight',
        )
        .in('id', [1, 2, 4, 5])
        .order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, color: 'red', c: 'red', w: null, ws: null, first_size: null, weight: '1.5' },
      { id: 2, color: 'blue', c: 'blue', w: 10, ws: '10', first_size: null, weight: null },
      { id: 4, color: 'white', c: 'white', w: null, ws: null, first_size: 'S', weight: null },
      // {"color": null}: ->> of a JSON null is SQL NULL, not the text "null".
      { id: 5, color: null, c: null, w: null, ws: null, first_size: null, weight: null },
    ]);
  });

  test('JSON path without alias is named after the last key', async () => {
    const rows = ok(await db.from('products').select('id,attrs->>material').eq('id', 9));
    assert.deepEqual(rows, [{ id: 9, material: 'canvas' }]);
  });

  test('JSON path through an array index is named after the last key, not the index', async () => {
    const rows = ok(await db.from('products').select('id,attrs->sizes->>0').eq('id', 4));
    assert.deepEqual(rows, [{ id: 4, sizes: 'S' }]);
  });

  test('a view (customer_totals)', async () => {
    const rows = ok(await db.from('customer_totals').select('*').order('customer_id'));
    assert.deepEqual(rows, [
      { customer_id: 1, name: 'Alice Anderson', order_count: 3, total_spent: 161 },
      { customer_id: 2, name: 'bob brown', order_count: 2, total_spent: 259.99 },
      { customer_id: 3, name: 'Chloé Dubois', order_count: 3, total_spent: 83 },
      { customer_id: 4, name: "Dan O'Neil", order_count: 2, total_spent: 1072.09 },
      { customer_id: 5, name: 'Eve "Evie" Park', order_count: 2, total_spent: 22.5 },
      { customer_id: 6, name: 'Zoë Zhang', order_count: 0, total_spent: 0 },
    ]);
  });
});

// PostgREST's aggregate functions (run.sh turns api.aggregates on) and the
// embedded count supabase-js code writes.
describe('aggregates', () => {
  test('count() per group of the other selected columns', async () => {
    const rows = ok(await db.from('orders').select('status, count()'));
    const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.count]));
    assert.deepEqual(byStatus, { paid: 4, shipped: 3, pending: 3, cancelled: 2 });
  });

  test('sum() with an alias and filters, avg() with a result cast', async () => {
    const [row] = ok(await db.from('orders').select('spent:total.sum(), n:count()').eq('customer_id', 1));
    assert.equal(Number(row.spent), 161);
    assert.equal(row.n, 3);
    const [max] = ok(await db.from('order_items').select('qty.max(), qty.min()::text'));
    assert.deepEqual(max, { max: 10, min: '1' });
  });

  test('the embedded count: orders(count)', async () => {
    const rows = ok(await db.from('customers').select('id, orders(count)').in('id', [1, 6]).order('id'));
    assert.deepEqual(rows, [
      { id: 1, orders: [{ count: 3 }] },
      { id: 6, orders: [{ count: 0 }] },
    ]);
  });

  test('an aggregate inside an embed, over its filtered rows', async () => {
    const rows = ok(
      await db.from('orders').select('id, order_items(qty.sum())').in('id', [1, 7]).order('id'),
    );
    assert.deepEqual(rows, [
      { id: 1, order_items: [{ sum: 6 }] },
      { id: 7, order_items: [{ sum: null }] },
    ]);
  });
});

// PostgREST's computed fields: order_count(customers) in the PostgreSQL
// fixture, a column when named (not part of `*`).
describe('computed fields', { skip: !PG && 'computed fields are PostgreSQL functions' }, () => {
  test('selected, filtered and ordered like a column', async () => {
    const rows = ok(await db.from('customers').select('id, order_count').gte('order_count', 3).order('id'));
    assert.deepEqual(rows, [
      { id: 1, order_count: 3 },
      { id: 3, order_count: 3 },
    ]);
    const [top] = ok(await db.from('customers').select('name').order('order_count', { ascending: false }).order('id').limit(1));
    assert.deepEqual(top, { name: 'Alice Anderson' });
    const [star] = ok(await db.from('customers').select('*').eq('id', 1));
    assert.equal(star.order_count, undefined);
  });

  test('inside an embed', async () => {
    const [order] = ok(await db.from('orders').select('id, customers(order_count)').eq('id', 1));
    assert.deepEqual(order, { id: 1, customers: { order_count: 3 } });
  });

  test('a computed relationship embeds by the function name', async () => {
    const rows = ok(await db.from('customers').select('id, big_orders(id)').in('id', [1, 4, 6]).order('id'));
    assert.deepEqual(rows, [
      { id: 1, big_orders: [{ id: 1 }] },
      { id: 4, big_orders: [{ id: 8 }] },
      { id: 6, big_orders: [] },
    ]);
  });
});

