{
  "variables": {
    "with_hiredis%": "<!(node scripts/hiredis-headers.mjs)"
  },
  "targets": [
    {
      "target_name": "crowd_core",
      "sources": ["native/crowd_core.c", "native/crc32c.c", "native/json_check.c", "native/file_lock.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ],
  "conditions": [
    ["with_hiredis==1", {
      "targets": [
        {
          "target_name": "crowd_redis",
          "sources": ["native/redis_writer.c"],
          "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-function", "-Wno-unused-parameter"],
          "defines": ["NAPI_VERSION=8"],
          "libraries": ["-lhiredis"]
        }
      ]
    }]
  ]
}
