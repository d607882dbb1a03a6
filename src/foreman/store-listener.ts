import type { Store, StoreNotifications } from '../store/store.ts';
import type { Service } from './shared/service.ts';

/**
 * Hears what other foremen sharing the database announce (new work, job changes, running
 * tasks to cancel) while it runs. Only drivers shared by several foremen announce anything;
 * on the others this service does nothing.
 */
export class StoreListener implements Service {
  readonly name = 'store listener';
  private readonly store: Store;
  private readonly handlers: StoreNotifications;
  private unlisten: (() => Promise<void>) | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(store: Store, handlers: StoreNotifications) {
    this.store = store;
    this.handlers = handlers;
  }

  async start(): Promise<void> {
    if (this.state !== 'new' || !this.store.listen) return;
    this.state = 'running';
    this.unlisten = await this.store.listen(this.handlers);
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    const unlisten = this.unlisten;
    this.unlisten = null;
    await unlisten?.();
  }
}
