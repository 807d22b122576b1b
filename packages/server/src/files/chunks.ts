/** Normalises a stream of `Buffer | string` chunks to bytes, the form both parsers scan. */

/**
 * Yields every chunk as a Buffer. A text chunk ending in the first half of a surrogate pair keeps
 * that half for the next chunk, so a character split between text chunks is encoded whole.
 */
export async function* toByteChunks(input: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let pendingHigh = '';
  for await (const chunk of input) {
    if (typeof chunk === 'string') {
      let text = pendingHigh + chunk;
      pendingHigh = '';
      const lastCode = text.charCodeAt(text.length - 1);
      if (lastCode >= 0xd800 && lastCode <= 0xdbff) {
        pendingHigh = text.slice(-1);
        text = text.slice(0, -1);
      }
      if (text.length > 0) yield Buffer.from(text, 'utf8');
    } else {
      if (pendingHigh) {
        yield Buffer.from(pendingHigh, 'utf8');
        pendingHigh = '';
      }
      if (chunk.length > 0) yield chunk;
    }
  }
  if (pendingHigh) yield Buffer.from(pendingHigh, 'utf8');
}
