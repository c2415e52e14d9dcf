// Server-Sent Events from a fetch response body: yields each event's data (its `data:` lines joined), as the
// OpenAI streaming routes send them. EventSource can't be used: it only does GET and can't send a key header.
// Aborting the fetch (its AbortSignal) makes the pending read reject, which ends the loop here too.

/** Splits a stream of text into events at blank lines; `\r\n`, `\r` and `\n` line ends all count. */
export async function* sseData(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let carry = ''; // a chunk's last `\r` may be the first half of `\r\n`
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let text = carry + value;
      carry = text.endsWith('\r') ? '\r' : '';
      if (carry) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = dataOf(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (data !== undefined) yield data;
      }
    }
    // An event the stream ended inside is dropped, as EventSource does: its data may be cut short.
  } finally {
    reader.releaseLock();
  }
}

/** The data of one event block; undefined for a block of only comments or other fields. */
function dataOf(block) {
  const lines = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) lines.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  return lines.length > 0 ? lines.join('\n') : undefined;
}
