/**
 * A FIFO async mutex: mdev_list_lock. Critical sections may await (plugin
 * calls), so JavaScript's run-to-completion is not enough on its own.
 */
export type Release = () => void;

export class Mutex {
  #locked = false;
  readonly #waiters: Array<() => void> = [];

  get locked(): boolean {
    return this.#locked;
  }

  acquire(): Promise<Release> {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve(this.#releaser());
    }
    return new Promise(resolve => this.#waiters.push(() => resolve(this.#releaser())));
  }

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next)
        next(); // ownership passes straight to the next waiter
      else this.#locked = false;
    };
  }
}
