{
  "targets": [
    {
      "target_name": "xen_vchan",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/device.cc",
        "native/evtchn.cc",
        "native/grants.cc",
        "native/mapping.cc",
        "native/watcher.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
