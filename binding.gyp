{
  "targets": [
    {
      "target_name": "crowd_core",
      "sources": ["native/crowd_core.c", "native/crc32c.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
