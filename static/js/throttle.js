// Sending at a bounded rate: the drawing pages send the newest drawing at most
// every so many milliseconds while the pen moves, the last one always.

/**
 * Call `fn` at most once every `ms` milliseconds: the first call runs at once,
 * later ones within the window collapse into one trailing call with the latest
 * arguments. `.flush()` runs a pending call now, `.cancel()` drops it.
 */
export function throttle(fn, ms) {
  let last = -Infinity;
  let timer = null;
  let pendingArgs = null;
  let pendingThis = null;

  function run() {
    timer = null;
    last = performance.now();
    const args = pendingArgs;
    const self = pendingThis;
    pendingArgs = pendingThis = null;
    fn.apply(self, args);
  }

  function throttled(...args) {
    pendingArgs = args;
    pendingThis = this;
    const wait = ms - (performance.now() - last);
    if (wait <= 0) {
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      run();
    } else if (timer === null) {
      timer = setTimeout(run, wait);
    }
  }

  throttled.flush = () => {
    if (timer !== null) {
      clearTimeout(timer);
      run();
    }
  };
  throttled.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    pendingArgs = pendingThis = null;
  };
  return throttled;
}
