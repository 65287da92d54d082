/** An in-process mutex keyed by a store object and a string. */

const locks = new WeakMap<object, Map<string, Promise<void>>>();

/** Run fn after every earlier call for the same store and key has finished. */
export async function serialized<T>(store: object, key: string, fn: () => Promise<T>): Promise<T> {
  let m = locks.get(store);
  if (!m) {
    m = new Map();
    locks.set(store, m);
  }
  const prev = m.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = prev.then(() => mine);
  m.set(key, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (m.get(key) === tail) m.delete(key);
  }
}
