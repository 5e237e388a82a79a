/**
 * A view of the core that is always a function of its state: it subscribes to
 * the core's `change` events and reconciles what each one names, and
 * `syncAll()` rebuilds everything from scratch (also the cure for any
 * inconsistency). The sysfs tree and the VFIO device files are both such views.
 */
import type { CoreChange, MdevCoreApi } from './model.js';

export abstract class CoreView {
  private readonly onChange = (c: CoreChange) => this.handle(c);
  private attached = false;

  constructor(readonly core: MdevCoreApi) {}

  /** Reconcile the objects one change names. */
  protected abstract handle(c: CoreChange): void;
  /** Reconcile everything with the core. */
  abstract syncAll(): void;

  /** Subscribe to the core and build the view from its current state. */
  attach(): this {
    if (!this.attached) {
      this.core.on('change', this.onChange);
      this.attached = true;
    }
    this.syncAll();
    return this;
  }

  detach(): void {
    if (this.attached) this.core.off('change', this.onChange);
    this.attached = false;
  }
}
