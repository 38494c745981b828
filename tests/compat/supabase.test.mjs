// supabase-js pointed at the runtime as at a Supabase project:
// createClient(url, key) calls <url>/rest/v1/<table>, which the runtime
// serves with `api.pathPrefix: /rest/v1` (run.sh starts it so). The client
// sends its key as `apikey` and `Authorization: Bearer`: a dbapi key
// (DBAPI_API_KEY, made by `dbapi-runtime keygen` for the role `service`).
//
// Writes use their own `categories` rows (ids 2000 to 2099; write.test.mjs
// has 1000 to 1999) and remove them again.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@supabase/supabase-js';
import { ok, ids, fails, PG, SQLITE } from './helpers.mjs';

const BASE_URL = process.env.DBAPI_BASE_URL;
if (!BASE_URL) {
  throw new Error('DBAPI_BASE_URL (the runtime without its /rest/v1 prefix) must be set: run tests/compat/run.sh');
}

// Realtime (WebSockets) is not part of this suite, and Node 20 has no
// WebSocket of its own, which createClient otherwise refuses.
class NoWebSocket {
  constructor() {
    throw new Error('supabase realtime is not used by this suite');
  }
}

const API_KEY = process.env.DBAPI_API_KEY;
if (!API_KEY) {
  throw new Error('DBAPI_API_KEY (a key of the runtime) must be set: run tests/compat/run.sh');
}

const supabase = createClient(BASE_URL, API_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
  realtime: { transport: NoWebSocket },
});

const MINE = [2000, 2099];
const removeMine = () => supabase.from('categories').delete().gte('id', MINE[0]).lte('id', MINE[1]);

describe('supabase-js', () => {
  after(removeMine);

  test('a select with filters and order', async () => {
    const rows = ok(
      await supabase.from('orders').select('id, status').in('id', [3, 1, 2, 4]).neq('status', 'cancelled').order('id', { ascending: false }),
    );
    assert.deepEqual(rows, [
      { id: 3, status: 'pending' },
      { id: 2, status: 'shipped' },
      { id: 1, status: 'paid' },
    ]);
  });

  test('a to-many spread gives an array per column', async () => {
    const rows = ok(
      await supabase
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

  test('the embedded count and an aggregate', async () => {
    const rows = ok(await supabase.from('customers').select('id, orders(count)').eq('id', 2));
    assert.deepEqual(rows, [{ id: 2, orders: [{ count: 2 }] }]);
    const [row] = ok(await supabase.from('orders').select('count(), total.max()').eq('customer_id', 4));
    assert.deepEqual({ count: row.count, max: Number(row.max) }, { count: 2, max: 1024.99 });
  });

  test('embedding by foreign-key column and by constraint name', async () => {
    const rows = ok(await supabase.from('products').select('id, category_id(name), categories!fk_products_category(id)').eq('id', 1));
    assert.deepEqual(rows, [{ id: 1, category_id: { name: 'Tools' }, categories: { id: 3 } }]);
  });

  test('a computed field', { skip: !PG && 'computed fields are PostgreSQL functions' }, async () => {
    const rows = ok(await supabase.from('customers').select('id, order_count').eq('order_count', 0));
    assert.deepEqual(rows, [{ id: 6, order_count: 0 }]);
  });

  test('an empty embed filters without being output', async () => {
    const inner = ok(await supabase.from('customers').select('id, orders!inner()').in('id', [1, 6]).order('id'));
    assert.deepEqual(inner, [{ id: 1 }]);
    const without = ok(await supabase.from('customers').select('id, orders()').is('orders', null).in('id', [1, 6]));
    assert.deepEqual(without, [{ id: 6 }]);
  });

  test('a JSON path is named after its last key', async () => {
    const rows = ok(await supabase.from('products').select('id,attrs->sizes->>0').eq('id', 4));
    assert.deepEqual(rows, [{ id: 4, sizes: 'S' }]);
  });

  test('insert with select, then delete', async () => {
    const inserted = ok(
      await supabase.from('categories').insert([{ id: 2001, name: 'Supabase' }, { id: 2002, name: 'Client', parent_id: 2001 }]).select('id, parent_id, name').order('id'),
      201,
    );
    assert.deepEqual(inserted, [
      { id: 2001, parent_id: null, name: 'Supabase' },
      { id: 2002, parent_id: 2001, name: 'Client' },
    ]);
    const deleted = ok(await supabase.from('categories').delete().eq('id', 2002).select('id'));
    assert.deepEqual(ids(deleted), [2002]);
    const left = ok(await supabase.from('categories').select('id').gte('id', MINE[0]).lte('id', MINE[1]));
    assert.deepEqual(ids(left), [2001]);
    ok(await removeMine(), 204);
    assert.deepEqual(ok(await supabase.from('categories').select('id').gte('id', MINE[0]).lte('id', MINE[1])), []);
  });

  test('an unknown table is 404 PGRST205 under the prefix too', async () => {
    fails(await supabase.from('no_such_table').select('*'), 404, { code: 'PGRST205' });
  });

  test('rpc calls a function', { skip: SQLITE && 'SQLite has no functions' }, async () => {
    assert.equal(ok(await supabase.rpc('add_them', { a: 1, b: 2 })), 3);
    assert.equal(ok(await supabase.rpc('add_them', { a: 40, b: 2 }, { get: true })), 42);
  });

  test('rpc on SQLite is a clear 404', { skip: !SQLITE }, async () => {
    fails(await supabase.rpc('add_them', { a: 1, b: 2 }), 404, { code: 'PGRST202' });
  });

  test('the dbapi key is checked, and the prefix is required', async () => {
    const headers = { apikey: API_KEY, authorization: `Bearer ${API_KEY}` };
    const prefixed = await fetch(`${BASE_URL}/rest/v1/customers?select=id&id=eq.1`, { headers });
    assert.equal(prefixed.status, 200);
    assert.deepEqual(await prefixed.json(), [{ id: 1 }]);
    const bare = await fetch(`${BASE_URL}/customers?select=id&id=eq.1`, { headers });
    assert.equal(bare.status, 404);
    assert.equal((await bare.json()).code, 'PGRST125');
  });

  test('a client with a wrong key is refused 401, whatever it asks', async () => {
    // The last hex digit changed: always another key (the key is random;
    // putting a fixed digit there gave the same key one run in sixteen).
    const last = API_KEY.endsWith('0') ? '1' : '0';
    const wrong = createClient(BASE_URL, `${API_KEY.slice(0, -1)}${last}`, {
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: NoWebSocket },
    });
    fails(await wrong.from('customers').select('id'), 401, { code: 'DBAPI401' });
    fails(await wrong.from('categories').insert({ id: MINE[1], name: 'nope' }), 401, { code: 'DBAPI401' });
    assert.deepEqual(ok(await supabase.from('categories').select('id').eq('id', MINE[1])), []);
  });
});
