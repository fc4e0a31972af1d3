// Argument checks for the exported functions (TypeError for a wrong type,
// RangeError for a wrong value, each naming the argument) and errno errors
// shaped like Node's own system errors.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace xen {

// Largest integer a JS number holds exactly: mmap offsets and indices.
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t min, uint32_t max);
uint64_t U64Arg(const Napi::CallbackInfo& info, size_t i, const char* name);
int FdArg(const Napi::CallbackInfo& info, size_t i);
bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name);
Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t i, const char* name);

// An Error with `code` (errno name), `errno` (negative, as Node does) and
// `syscall`, plus `path` when one is given.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path = "");

}  // namespace xen
