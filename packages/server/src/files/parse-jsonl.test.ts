import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseJsonLines, type FileRow } from './index.js';

/** Feeds `text` as byte chunks of `size` (0: one chunk), or at the given cut points. */
async function* chunks(text: string | Buffer, size = 0): AsyncGenerator<Buffer> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  if (size === 0) {
    yield bytes;
    return;
  }
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect(rows: AsyncIterable<FileRow>): Promise<FileRow[]> {
  const out: FileRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

describe('parseJsonLines', () => {
  it('yields good lines around a bad one, with line numbers and the parser message', async () => {
    const text = '{"a":1}\n{"a":2,}\n\n[1,2]\n  \n{"a":3}';
    const rows = await collect(parseJsonLines(chunks(text)));
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[0], { line: 1, record: { a: 1 } });
    const bad = rows[1];
    assert.equal(bad?.line, 2);
    assert.equal(bad?.error?.code, 'MALFORMED_JSON');
    assert.match(bad?.error?.message ?? '', /^line 2: invalid JSON: .*position/);
    assert.equal(bad?.raw, '{"a":2,}');
    assert.equal(rows[2]?.line, 4);
    assert.match(rows[2]?.error?.message ?? '', /expected a JSON object, got array/);
    assert.deepEqual(rows[3], { line: 6, record: { a: 3 } });
  });

  it('tolerates a BOM on line 1 and CRLF line ends', async () => {
    const text = '\ufeff{"a":1}\r\n{"b":"x"}\r\n\r\n{"c":true}\r\n';
    const rows = await collect(parseJsonLines(chunks(text)));
    assert.deepEqual(rows, [
      { line: 1, record: { a: 1 } },
      { line: 2, record: { b: 'x' } },
      { line: 4, record: { c: true } },
    ]);
  });

  it('handles 1-byte chunks splitting lines, CRLF and multi-byte characters', async () => {
    const text = '\ufeff{"name":"Zoë 🎉 北京"}\r\n{"n":2}\n';
    const rows = await collect(parseJsonLines(chunks(text, 1)));
    assert.deepEqual(rows, [
      { line: 1, record: { name: 'Zoë 🎉 北京' } },
      { line: 2, record: { n: 2 } },
    ]);
  });

  it('accepts text chunks, even a surrogate pair split between them', async () => {
    async function* parts(): AsyncGenerator<string> {
      yield '{"e":"\ud83c';
      yield '\udf89"}\n';
    }
    assert.deepEqual(await collect(parseJsonLines(parts())), [{ line: 1, record: { e: '🎉' } }]);
  });

  it('turns an over-long line into an error row without keeping it, then goes on', async () => {
    const long = `{"x":"${'y'.repeat(50_000)}"}`;
    const text = `{"a":1}\n${long}\n{"a":2}\n`;
    const rows = await collect(parseJsonLines(chunks(text, 1000), { maxLineBytes: 1000 }));
    assert.equal(rows.length, 3);
    assert.equal(rows[1]?.line, 2);
    assert.equal(rows[1]?.error?.details[0]?.reason, 'too-large');
    assert.match(rows[1]?.error?.message ?? '', /longer than the limit of 1000 bytes/);
    const raw = rows[1]?.raw ?? '';
    assert.ok(raw.startsWith('{"x":"yyy') && raw.length < 2000, 'only a prefix of the line is kept');
    assert.deepEqual(rows[2], { line: 3, record: { a: 2 } });
  });

  it('truncates the raw text of a bad line to 10 KB', async () => {
    const rows = await collect(parseJsonLines(chunks(`{"x": ${'1'.repeat(20_000)}x}\n`)));
    assert.equal(rows[0]?.error?.code, 'MALFORMED_JSON');
    assert.ok((rows[0]?.raw ?? '').length <= 10 * 1024 + 1);
  });

  it('reports invalid UTF-8 as an error row', async () => {
    const bytes = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n{"a":1}\n')]);
    const rows = await collect(parseJsonLines(chunks(bytes)));
    assert.equal(rows[0]?.error?.details[0]?.reason, 'encoding');
    assert.deepEqual(rows[1], { line: 2, record: { a: 1 } });
  });

  it('round-trips random objects written as JSON Lines, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.dictionary(fc.string(), fc.jsonValue()), { maxLength: 20 }),
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        async (objects, size, crlf) => {
          const text = objects.map((o) => JSON.stringify(o)).join(crlf ? '\r\n' : '\n');
          const rows = await collect(parseJsonLines(chunks(text, size)));
          assert.deepEqual(
            rows,
            objects.map((o, i) => ({ line: i + 1, record: JSON.parse(JSON.stringify(o)) as unknown })),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
