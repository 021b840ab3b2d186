# EB_SANITIZE=address,undefined applies to every target in the tree, so the
# whole ctest suite (daemon, helpers, tests) runs instrumented.
if(EB_SANITIZE)
  add_compile_options(-fsanitize=${EB_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${EB_SANITIZE})
endif()

# libFuzzer builds: every library the fuzz targets link (eb_core above all)
# must carry coverage instrumentation, or the fuzzer sees only the few edges
# of the target file and is effectively blind. fuzzer-no-link instruments
# without pulling libFuzzer's main() into every binary.
if(EB_BUILD_FUZZERS)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
