// Each source file adds its functions to the module's exports.
#pragma once

#include <napi.h>

namespace xen {

void InitDevice(Napi::Env env, Napi::Object exports);
void InitGrants(Napi::Env env, Napi::Object exports);
void InitEvtchn(Napi::Env env, Napi::Object exports);
void InitMapping(Napi::Env env, Napi::Object exports);
void InitWatcher(Napi::Env env, Napi::Object exports);

}  // namespace xen
