// Shared set-up for the compatibility tests: the client, the engine under
// test and assertion helpers. run.sh sets DBAPI_URL and DBAPI_ENGINE and
// loads api-runtime/tests/fixtures/<engine>.sql (the three dialect files
// hold the same rows) into a fresh database before the runtime starts.
//
// Expected values in the tests are worked out by hand from the fixture rows,
// never taken from a response.

import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';

export const DBAPI_URL = process.env.DBAPI_URL;
export const ENGINE = process.env.DBAPI_ENGINE;

if (!DBAPI_URL || !['postgres', 'mysql', 'sqlite'].includes(ENGINE)) {
  throw new Error(
    'DBAPI_URL and DBAPI_ENGINE (postgres|mysql|sqlite) must be set: run tests/compat/run.sh',
  );
}

export const PG = ENGINE === 'postgres';
export const MYSQL = ENGINE === 'mysql';
export const SQLITE = ENGINE === 'sqlite';

/** How the runtime names the engine in "not supported on ..." messages. */
export const ENGINE_LABEL = { postgres: 'PostgreSQL', mysql: 'MySQL', sqlite: 'SQLite' }[ENGINE];

export const db = new PostgrestClient(DBAPI_URL);

/** Fails with the whole response when the request did not succeed. */
export function ok(res, status = 200) {
  assert.equal(
    res.error,
    null,
    `expected success, got status ${res.status}: ${JSON.stringify(res.error)}`,
  );
  assert.equal(res.status, status, `unexpected status; body: ${JSON.stringify(res.data)}`);
  return res.data;
}

/** The `id` (or another key) of each row, in response order. */
export function ids(rows, key = 'id') {
  assert.ok(Array.isArray(rows), `expected an array of rows, got ${JSON.stringify(rows)}`);
  return rows.map((r) => r[key]);
}

/** Asserts a failed response: status, optional code, and message fragments. */
export function fails(res, status, { code, message = [], messageMatches } = {}) {
  assert.equal(
    res.status,
    status,
    `expected status ${status}, got ${res.status}; data ${JSON.stringify(res.data)}, error ${JSON.stringify(res.error)}`,
  );
  assert.ok(res.error, `expected an error object, got ${JSON.stringify(res)}`);
  assert.equal(res.data, null);
  if (code !== undefined) assert.equal(res.error.code, code, `error: ${JSON.stringify(res.error)}`);
  for (const m of [].concat(message)) {
    assert.ok(
      typeof res.error.message === 'string' && res.error.message.includes(m),
      `error message should contain ${JSON.stringify(m)}: ${JSON.stringify(res.error)}`,
    );
  }
  if (messageMatches) {
    assert.match(res.error.message, messageMatches, `error: ${JSON.stringify(res.error)}`);
  }
  return res.error;
}

/**
 * An operator the engine cannot express: DESIGN §4 asks for "a clear 400
 * naming the operator and the engine, never wrong results".
 */
export function unsupported(res, operator) {
  const err = fails(res, 400);
  assert.ok(
    err.message.includes(`"${operator}"`) || err.message.includes(` ${operator} `),
    `the error should name the operator ${operator}: ${JSON.stringify(err)}`,
  );
  assert.ok(
    err.message.includes(ENGINE_LABEL),
    `the error should name the engine (${ENGINE_LABEL}): ${JSON.stringify(err)}`,
  );
  return err;
}

/**
 * A timestamp as an ISO string in UTC. Engines legitimately differ here:
 * PostgreSQL (timestamptz) and the SQLite fixture (ISO text) carry "+00:00",
 * MySQL/MariaDB DATETIME carries no zone at all (the fixture stores UTC
 * wall-clock time), and fractional seconds may or may not be printed.
 */
export function utc(ts) {
  assert.equal(typeof ts, 'string', `timestamp should be a string, got ${JSON.stringify(ts)}`);
  const zoned = /([zZ]|[+-]\d\d(:?\d\d)?)$/.test(ts) ? ts : `${ts}Z`;
  const d = new Date(zoned.replace(' ', 'T'));
  assert.ok(!Number.isNaN(d.getTime()), `not a timestamp: ${ts}`);
  return d.toISOString();
}

/** Sorted copy (numbers ascending), for sets whose order the API does not fix. */
export function sorted(values) {
  return [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Parses CSV (RFC 4180) into rows of fields. An unquoted empty field is
 * null (how PostgREST writes NULL), a quoted one the empty string. Quoting
 * is optional in CSV and servers differ in when they quote (PostgREST quotes
 * any value with a space), so tests compare parsed values, not bytes.
 */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let i = 0;
  const body = text.replace(/\r?\n$/, '');
  if (body === '') return rows;
  for (;;) {
    let value;
    if (body[i] === '"') {
      value = '';
      i += 1;
      for (;;) {
        if (i >= body.length) throw new Error(`unterminated quoted CSV field in ${JSON.stringify(text)}`);
        if (body[i] === '"') {
          if (body[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        value += body[i];
        i += 1;
      }
    } else {
      let j = i;
      while (j < body.length && body[j] !== ',' && body[j] !== '\n' && body[j] !== '\r') j += 1;
      value = j === i ? null : body.slice(i, j);
      i = j;
    }
    row.push(value);
    if (i >= body.length) {
      rows.push(row);
      return rows;
    }
    if (body[i] === ',') {
      i += 1;
    } else {
      if (body[i] === '\r') i += 1;
      if (body[i] !== '\n') throw new Error(`unexpected character at ${i} in CSV ${JSON.stringify(text)}`);
      i += 1;
      rows.push(row);
      row = [];
    }
  }
}
