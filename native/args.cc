#include "args.h"

#include <uv.h>

#include <cmath>
#include <string>

namespace xen {
namespace {

std::string TypeOf(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

std::string NumberText(double d) {
  // Integral values print without a fraction, others as JS would roughly.
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e18) return std::to_string(static_cast<long long>(d));
  return std::to_string(d);
}

double IntegerArg(const Napi::CallbackInfo& info, size_t i, const char* name, double min, double max) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer, got " + TypeOf(v));
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d)) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer, got " + NumberText(d));
  }
  if (d < min || d > max) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be in " + NumberText(min) + ".." + NumberText(max) +
                                                ", got " + NumberText(d));
  }
  return d;
}

}  // namespace

uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t min, uint32_t max) {
  return static_cast<uint32_t>(IntegerArg(info, i, name, min, max));
}

uint64_t U64Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<uint64_t>(IntegerArg(info, i, name, 0, static_cast<double>(kMaxSafeInteger)));
}

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(IntegerArg(info, i, "fd", 0, 0x7fffffff));
}

bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a boolean, got " + TypeOf(v));
  return v.As<Napi::Boolean>().Value();
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string, got " + TypeOf(v));
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be a non-empty string without NUL bytes");
  }
  return s;
}

Napi::Function FunctionArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsFunction()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a function, got " + TypeOf(v));
  return v.As<Napi::Function>();
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path) {
  // On Unix libuv's error codes are the negated errno values.
  char code[64];
  char text[128];
  uv_err_name_r(-err, code, sizeof code);
  uv_strerror_r(-err, text, sizeof text);
  std::string message = std::string(code) + ": " + text + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

}  // namespace xen
