// The native shim: one kernel operation per function on /dev/xen/*, nothing
// protocol-specific. Types and wrappers live in src/xen/native.ts.
#include <napi.h>

#include "exports.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  xen::InitDevice(env, exports);
  xen::InitGrants(env, exports);
  xen::InitEvtchn(env, exports);
  xen::InitMapping(env, exports);
  xen::InitWatcher(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xen_vchan, Init)
