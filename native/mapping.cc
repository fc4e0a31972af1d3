// mmap of a device range as an external ArrayBuffer, and its release.
//
// No use-after-unmap: release detaches the ArrayBuffer (every view over it
// becomes empty) before munmap; the GC finalizer unmaps only what was never
// released. A process-wide table maps a live address to its record, so
// release can find it from the ArrayBuffer alone.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <unordered_map>

#include "args.h"
#include "exports.h"

namespace xen {
namespace {

struct Mapping {
  void* addr;
  size_t length;
  bool released = false;
};

// Shared by every Node environment (worker threads) in the process.
std::mutex table_mutex;
std::unordered_map<void*, Mapping*> table;

constexpr uint32_t kMaxLength = 1u << 30;

// Runs when the ArrayBuffer is collected; owns the record.
void Finalize(Napi::Env, void*, Mapping* m) {
  if (!m->released) {
    {
      std::lock_guard<std::mutex> lock(table_mutex);
      table.erase(m->addr);
    }
    munmap(m->addr, m->length);
  }
  delete m;
}

// mmap(fd, offset, length, writable): ArrayBuffer over MAP_SHARED memory.
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint64_t offset = U64Arg(info, 1, "offset");
  uint32_t length = U32Arg(info, 2, "length", 1, kMaxLength);
  bool writable = BoolArg(info, 3, "writable");
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (offset % page != 0) throw Napi::RangeError::New(env, "offset must be a multiple of the page size");
  if (length % page != 0) throw Napi::RangeError::New(env, "length must be a multiple of the page size");

  int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* addr = mmap(nullptr, length, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (addr == MAP_FAILED) throw ErrnoError(env, errno, "mmap");

  auto* m = new Mapping{addr, length};
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    table[addr] = m;
  }
  try {
    return Napi::ArrayBuffer::New(env, addr, length, Finalize, m);
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(table_mutex);
      table.erase(addr);
    }
    munmap(addr, length);
    delete m;
    throw;
  }
}

// munmap(arrayBuffer): true if it unmapped now, false if it was already released.
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer returned by mmap");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return Napi::Boolean::New(env, false);

  Mapping* m;
  {
    std::lock_guard<std::mutex> lock(table_mutex);
    auto it = table.find(buffer.Data());
    if (it == table.end()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer returned by mmap");
    m = it->second;
    table.erase(it);
  }
  // Detach first: from here no JS view can reach the pages.
  buffer.Detach();
  m->released = true;
  if (munmap(m->addr, m->length) < 0) throw ErrnoError(env, errno, "munmap");
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
}

}  // namespace xen
