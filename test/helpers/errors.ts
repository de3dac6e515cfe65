/** What `fn` threw (fails the test when it returns), for asserting on an error's `code` and details. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw, but it returned');
}
