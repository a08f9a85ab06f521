// Polyfills for Node 20, loaded before anything else by every entry point and
// by jest. slonik 49 targets Node 24 and calls Promise.withResolvers (Node 22+).
// See docs/decisions/0001-esm-slonik-49-swc-jest.md.

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

export {};
