import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fail } from './errno.js';
import { PAGE_SIZE } from './wire.js';

const ZERO = Buffer.alloc(64 * PAGE_SIZE);

/**
 * Every granted page lives in one sparse file on tmpfs; processes map pages
 * of it by offset. Pages are recycled through a free list and zeroed when
 * handed out (gntalloc gives out zeroed pages).
 */
export class PagePool {
  readonly path: string;
  private readonly fd: number;
  private readonly free: number[] = [];
  private next = 0;
  private used = 0;
  private closed = false;

  constructor(dir: string, readonly maxPages: number) {
    const shm = existsSync('/dev/shm') ? '/dev/shm' : dir;
    removeOrphans(shm);
    this.path = join(shm, `xensim-${process.pid}-${randomBytes(4).toString('hex')}.pages`);
    this.fd = openSync(this.path, 'wx+', 0o600);
  }

  get live(): number {
    return this.used;
  }

  /** File size in pages: the high-water mark since the pool was last empty. */
  get extent(): number {
    return this.next;
  }

  alloc(count: number): number[] {
    if (this.used + count > this.maxPages) fail('ENOMEM', `emulator page pool full (${this.maxPages} pages)`);
    const pages: number[] = [];
    for (let i = 0; i < count; i++) pages.push(this.free.pop() ?? this.next++);
    // Ascending, so a mapping of them takes few mmap calls in the preload.
    pages.sort((a, b) => a - b);
    try {
      for (let i = 0; i < count; ) {
        let j = i + 1;
        while (j < count && j - i < ZERO.length / PAGE_SIZE && pages[j] === pages[j - 1]! + 1) j++;
        writeSync(this.fd, ZERO, 0, (j - i) * PAGE_SIZE, pages[i]! * PAGE_SIZE);
        i = j;
      }
    } catch (e) {
      this.free.push(...pages);
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') fail('ENOMEM', `no room for shared pages in ${this.path}`);
      throw e;
    }
    this.used += count;
    return pages;
  }

  release(page: number): void {
    if (this.closed) return;
    this.free.push(page);
    this.used--;
    // Nobody maps anything: give tmpfs its memory back.
    if (this.used === 0) {
      ftruncateSync(this.fd, 0);
      this.free.length = 0;
      this.next = 0;
    }
  }

  write(page: number, offset: number, data: Buffer): void {
    if (this.closed) return;
    writeSync(this.fd, data, 0, data.length, page * PAGE_SIZE + offset);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

/** Page and event slot files of brokers that were killed (nobody else removes them). */
function removeOrphans(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^xensim-(\d+)-[0-9a-f]+\.(pages|events)$/.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    try {
      if (statSync(path).uid !== process.getuid?.()) continue;
      process.kill(Number(m[1]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') unlinkSync(path);
    }
  }
}
