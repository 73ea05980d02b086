{
  "targets": [
    {
      "target_name": "original_dst",
      "sources": ["original_dst.cc"],
      "cflags_cc": ["-std=c++17", "-Wall"]
    }
  ]
}
