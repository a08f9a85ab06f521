// Polyfills for Node 20, loaded before anything else by every entry point and
// by jest, so that the code runs as it does on Node 22 in production:
// - slonik 49 targets Node 24 and calls Promise.withResolvers (Node 22+).
//   See docs/decisions/0001-esm-slonik-49-swc-jest.md.
// - `navigator` (Node 21+). Without it, pg's Cloudflare check builds a
//   `Response` when it loads, which loads Node's whole fetch implementation
//   (undici, and WebAssembly for its HTTP parser): 13 MB of resident memory in
//   every process that imports pg, for nothing (bench density).

interface PromiseWithResolversShape<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

const promiseConstructor = Promise as unknown as {
  withResolvers?: <T>() => PromiseWithResolversShape<T>;
};

if (typeof promiseConstructor.withResolvers !== 'function') {
  promiseConstructor.withResolvers = <T>(): PromiseWithResolversShape<T> => {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

if (typeof (globalThis as { navigator?: unknown }).navigator === 'undefined') {
  Object.defineProperty(globalThis, 'navigator', {
    // What Node 21+ answers; nothing here reads more of it.
    value: Object.freeze({ userAgent: `Node.js/${process.versions.node.split('.')[0]}` }),
    configurable: true,
    enumerable: true,
    writable: true,
  });
}

export {};
