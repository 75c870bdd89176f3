{
  "targets": [
    {
      "target_name": "walnut",
      "sources": [
        "native/addon.cc",
        "native/base_image.cc",
        "native/base_restore.cc",
        "native/checkpoint.cc",
        "native/checkpoint_copy.cc",
        "native/commit_lane.cc",
        "native/commit_lane_binding.cc",
        "native/commit_records.cc",
        "native/errors.cc",
        "native/export_io.cc",
        "native/faults.cc",
        "native/fd_registry.cc",
        "native/file.cc",
        "native/frame_scan.cc",
        "native/frames.cc",
        "native/instance.cc",
        "native/page_delta.cc",
        "native/page_versions.cc",
        "native/page_delta_binding.cc",
        "native/io_thread.cc",
        "native/js_value.cc",
        "native/lock_wait.cc",
        "native/posix_io.cc",
        "native/shm.cc",
        "native/thread_class.cc",
        "native/wal_zero_ahead.cc",
        "native/checksum/bindings.cc",
        "native/checksum/cpu.cc",
        "native/checksum/crc32c.cc",
        "native/checksum/crc32c_sse42.cc",
        "native/checksum/sqlite_wal.cc",
        "native/checksum/sqlite_wal_avx2.cc",
        "native/checksum/xxh3.cc",
        "native/checksum/xxh3_avx2.cc",
        "native/checksum/xxh3_avx512.cc",
        "native/fec/bindings.cc",
        "native/fec/gf256.cc",
        "native/fec/rs.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=c++17", "-O2"],
      "cflags": ["-O3"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "conditions": [
        ["target_arch=='x64'", { "defines": ["WALNUT_X86=1"] }]
      ]
    }
  ]
}
